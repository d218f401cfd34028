"""Programs with loops that symgrad keeps as loops (and a few it unrolls, saying why).

Each is plain Python and NumPy: the tests run them as they are (values, finite differences)
and under torch (tests/torch_oracle.py) for independent derivatives.
"""

import numpy as np


def euler(x, r):
    for _i in range(100):
        x = x + 0.01 * r * x * (1 - x)
    return x


def rnn(h, w, u):
    for i in range(200):
        h = np.tanh(w * h + u * np.sin(0.1 * i))
    return h


def swap(a, b):
    for _i in range(80):
        a, b = b, a + 0.1 * np.sin(b)
    return a * b


def branchy(x, r):
    for i in range(100):
        if np.sin(3 * x + 0.1 * i) > 0:
            x = x + 0.01 * r * x
        else:
            x = x - 0.005 * x * x
    return x


def in_branch(x, r):
    if r > 0:
        for _i in range(100):
            x = x + 0.01 * np.sin(r * x)
    else:
        x = 2 * x
    return x


def nested(x, w):
    for _i in range(70):
        for j in range(3):
            x = x + 0.01 * np.sin(w * x * j)
    return x


def total(x):
    s = 0.0
    for i in range(100):
        s = s + np.exp(-0.01 * i * x)
    return s


def temp(x, r):
    for _i in range(100):
        t = x * r
        x = x - 0.01 * t
    return x + t


def newton_sqrt(x):
    y = x
    while abs(y * y - x) > 1e-12 * x:
        y = 0.5 * (y + x / y)
    return y


def projectile(v, angle):
    px = 0.0
    py = 0.0
    vx = v * np.cos(angle)
    vy = v * np.sin(angle)
    while py >= 0.0:
        px = px + 0.01 * vx
        py = py + 0.01 * vy
        vx = vx - 0.01 * 0.1 * vx
        vy = vy - 0.01 * (9.81 + 0.1 * vy)
    return px


def counted(x):
    k = 0
    while k < 100:
        x = x + 0.01 * np.cos(x)
        k = k + 1
    return x


def tuple_at_index(x):
    ws = (0.1, 0.2, 0.3)
    for i in range(100):
        x = x + 0.01 * ws[i % 3] * x
    return x


def picked(x, a, b):
    ws = (a, b, a * b)
    for i in range(1200):
        x = x + 0.001 * ws[i % 3] * np.sin(x) + 0.0001 * ws[-1 - i % 2]
    return x


def inner_range(x):
    for i in range(100):
        for j in range(i % 3):
            x = x + 0.001 * x * j
    return x


def appended(x):
    xs = []
    for i in range(100):
        xs.append(x * i)
    return sum(xs)


def euler_small(x, r):
    for i in range(5):
        x = x + 0.1 * r * x * (1 - x) + 0.01 * i
    return x


def two_outputs(a, b):
    for _i in range(80):
        a, b = b, a + 0.1 * np.sin(b)
    return a, b


def while_small(x):
    k = 0
    while k < 4:
        x = x * x * 0.5 + 0.25 * k
        k = k + 1
    return x


def newton_capped(x):
    y = x
    for _k in range(100):
        step = 0.5 * (y - x / y)
        y = y - step
        if abs(step) < 1e-13 * x:
            break
    return y


def skip_some(x, r):
    for i in range(100):
        if np.sin(x + 0.1 * i) < 0:
            continue
        x = x + 0.01 * r * x
    return x


def grow_past(x):
    y = 1.0
    while True:
        y = y * x + 0.1
        if y > 10.0:
            break
    return y


def short_break(x):
    for i in range(5):
        x = x * 1.5
        if x > 2.0 + 0.1 * i:
            break
        x = x + 0.1
    return x


def static_jumps(x):
    y = x
    for i in range(6):
        if i == 1:
            continue
        if i == 4:
            break
        y = y * x
    return y
