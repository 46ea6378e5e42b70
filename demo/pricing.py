"""The bundled demo's service code: a price calculation with a bug (the discount is added)."""

import threading

ORDERS_SERVED = 0
_lock = threading.Lock()


def discounted(price: float, discount: float) -> float:
    return round(price + price * discount, 2)  # BUG: the discount is added, not subtracted


def serve(order_id: int, price: float) -> str:
    global ORDERS_SERVED
    with _lock:
        ORDERS_SERVED += 1
    return f"order {order_id}: {price:.2f} with 10% off -> {discounted(price, 0.10):.2f}"
