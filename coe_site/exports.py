"""Cell values for CSV downloads that spreadsheets open without running anything.

A text cell starting with ``= + - @`` (or a tab / carriage return that hides one) is read as a formula by Excel,
LibreOffice and Google Sheets (OWASP "CSV injection"): such text gets a leading apostrophe, which spreadsheets show
as text. Numbers are left alone, so a negative latency stays a number.
"""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
