"""Old import path: the fit recipes now live in `learnloop.schedule.recipes`."""

from .schedule.recipes import FitRecipes

FitPolicies = FitRecipes  # the earlier name

__all__ = ["FitPolicies", "FitRecipes"]
