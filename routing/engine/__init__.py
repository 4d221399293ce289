"""The router engine: plain Python (no Django). Embed → classify → fall back to ``general`` when unsure."""
from .router import FALLBACK, Router, RouteResult, train

__all__ = ["FALLBACK", "Router", "RouteResult", "train"]
