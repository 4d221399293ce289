"""Who may change the map, categories and experts: staff, or holders of ``experts.edit_map``."""


def can_edit_map(user):
    return bool(user.is_authenticated and user.is_active and (user.is_staff or user.has_perm("experts.edit_map")))
