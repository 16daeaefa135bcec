"""Standard pure-Python kernels (after pyperformance's nbody, spectral_norm,
richards-like object code, float and a generator pipeline), for
benches/python/interpreter_speed.py: the same functions run by the host's
CPython and as tasks written in Python, by CPython inside the component."""
import math


def nbody(steps):
    """pyperformance's nbody: five bodies, floats in lists."""
    pi = math.pi
    solar_mass = 4 * pi * pi
    days_per_year = 365.24
    bodies = [
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], solar_mass],
        [[4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01],
         [1.66007664274403694e-03 * days_per_year, 7.69901118419740425e-03 * days_per_year,
          -6.90460016972063023e-05 * days_per_year], 9.54791938424326609e-04 * solar_mass],
        [[8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01],
         [-2.76742510726862411e-03 * days_per_year, 4.99852801234917238e-03 * days_per_year,
          2.30417297573763929e-05 * days_per_year], 2.85885980666130812e-04 * solar_mass],
        [[1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01],
         [2.96460137564761618e-03 * days_per_year, 2.37847173959480950e-03 * days_per_year,
          -2.96589568540237556e-05 * days_per_year], 4.36624404335156298e-05 * solar_mass],
        [[1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01],
         [2.68067772490389322e-03 * days_per_year, 1.62824170038242295e-03 * days_per_year,
          -9.51592254519715870e-05 * days_per_year], 5.15138902046611451e-05 * solar_mass],
    ]
    pairs = [(bodies[i], bodies[j]) for i in range(len(bodies)) for j in range(i + 1, len(bodies))]
    dt = 0.01
    for _ in range(steps):
        for ([x1, y1, z1], v1, m1), ([x2, y2, z2], v2, m2) in pairs:
            dx, dy, dz = x1 - x2, y1 - y2, z1 - z2
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** (-1.5))
            b1m, b2m = m1 * mag, m2 * mag
            v1[0] -= dx * b2m
            v1[1] -= dy * b2m
            v1[2] -= dz * b2m
            v2[0] += dx * b1m
            v2[1] += dy * b1m
            v2[2] += dz * b1m
        for r, [vx, vy, vz], m in bodies:
            r[0] += dt * vx
            r[1] += dt * vy
            r[2] += dt * vz
    return round(bodies[0][0][0], 9)


def spectral_norm(n):
    """pyperformance's spectral_norm, on an n-by-n matrix."""
    def a(i, j):
        return 1.0 / (((i + j) * (i + j + 1) >> 1) + i + 1)

    def times(v):
        return [sum(a(i, j) * v[j] for j in range(n)) for i in range(n)]

    def times_transposed(v):
        return [sum(a(j, i) * v[j] for j in range(n)) for i in range(n)]

    u = [1.0] * n
    for _ in range(10):
        v = times_transposed(times(u))
        u = times_transposed(times(v))
    vbv = sum(x * y for x, y in zip(u, v))
    vv = sum(x * x for x in v)
    return round(math.sqrt(vbv / vv), 9)


class _Task:
    """Object-heavy code in the manner of richards: methods, attributes, a queue."""

    def __init__(self, ident, priority):
        self.ident = ident
        self.priority = priority
        self.work = 0
        self.next = None

    def run(self, packet):
        self.work += packet % 7 + self.priority
        return (packet * 31 + self.ident) % 1009


def objects(rounds):
    """A scheduler passing packets round a ring of task objects."""
    tasks = [_Task(i, i % 5) for i in range(10)]
    for first, second in zip(tasks, tasks[1:] + tasks[:1]):
        first.next = second
    task, packet = tasks[0], 1
    for _ in range(rounds):
        packet = task.run(packet)
        task = task.next
    return sum(t.work for t in tasks)


def float_points(n):
    """pyperformance's float: points made, normalised and maximised."""
    class Point:
        __slots__ = ("x", "y", "z")

        def __init__(self, i):
            self.x = x = math.sin(i)
            self.y = math.cos(i) * 3
            self.z = (x * x) / 2

        def normalize(self):
            norm = math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)
            self.x /= norm
            self.y /= norm
            self.z /= norm

    points = [Point(i) for i in range(n)]
    for p in points:
        p.normalize()
    return round(max(p.x for p in points) + max(p.y for p in points) + max(p.z for p in points), 9)


def generators(n):
    """Generator pipelines, dict and string work."""
    words = (f"w{i % 97}" for i in range(n))
    counts = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return sum(len(k) * v for k, v in sorted(counts.items()))
