"""Debuggee module: the code the adapter tests fix while it runs."""

RATE = 10


def price(qty):
    total = qty * RATE  # @price_body
    return total


class Point:
    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x
