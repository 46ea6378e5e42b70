"""The fix the demo applies: the same function as in pricing.py, with the sign corrected."""


def discounted(price: float, discount: float) -> float:
    return round(price - price * discount, 2)
