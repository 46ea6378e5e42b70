"""Discount rates of the sample shop (the end-to-end test fixes `rate` in a parent and its child process)."""


def rate():
    return 0  # the bug: no discount
