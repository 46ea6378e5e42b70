"""Prices, with non-ASCII above every definition: café, naïve, 😀 (two UTF-16 units)."""
from __future__ import annotations

import functools
from typing import overload

TAX = 0.2  # @module_level

square = lambda x: x * x  # @lambda


def total(items):  # @total_def
    subtotal = sum(items)  # @total_body

    def helper(v):  # @nested_def
        return v * 2  # @nested_body

    return subtotal * (1 + TAX)
# @between


@functools.lru_cache(maxsize=None)  # @decorator_line
def cached(n):
    return "😀 café " * n  # @cached_end


async def fetch(url):  # @async_def
    return url


class Cart:  # @class_line
    """A cart."""  # @class_doc

    items: list  # @class_attr

    def add(self, item):  # @method
        self.items.append(item)

    @property
    def size(self):  # @prop
        return len(self.items)

    @size.setter
    def size(self, value):  # @setter
        raise AttributeError(value)

    class Line:  # @nested_class
        def price(self):  # @nested_method
            return 0

    async def checkout(self):
        return [x for x in self.items if x]  # @comprehension


@overload
def parse(x: int) -> int: ...  # @overload_stub
@overload
def parse(x: str) -> str: ...
def parse(x):  # @overload_impl
    return x


@overload
def only_stubs(x: int) -> int: ...  # @stub_only


if TAX:
    def conditional():  # @conditional
        return 1


def make_class():
    class Local:  # @local_class
        def m(self):  # @local_method
            return 1  # @local_body

    return Local
