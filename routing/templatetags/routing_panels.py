"""Template tags for pages of lower apps that show routing state (the map editor shows the active router): the
catalog's views stay free of routing imports, the template asks routing directly."""
from django import template

from routing.selectors import active_router_row

register = template.Library()


@register.simple_tag
def active_router():
    """The active RouterModel row, or None."""
    return active_router_row()
