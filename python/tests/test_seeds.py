"""Per-task seeds: the same numbers for any worker count and kind."""

from wasmpool import Pool


def hits(module, workers, processes, seed):
    with Pool(module, workers=workers, processes=processes, seed=seed) as pool:
        return pool.map("pi_hits_seeded", [1000] * 40)


def test_results_do_not_depend_on_workers_or_their_kind(module):
    reference = hits(module, 1, False, seed=7)
    assert hits(module, 3, False, seed=7) == reference
    assert hits(module, 2, True, seed=7) == reference
    assert hits(module, 2, False, seed=8) != reference
    assert len(set(reference)) > 1, "each input has its own stream"


def test_a_drawn_seed_can_be_given_back(module):
    with Pool(module, workers=2) as pool:
        seed = pool.seed
        first = pool.map("random_walk", [100] * 10)
    with Pool(module, workers=1, seed=seed) as pool:
        assert pool.map("random_walk", [100] * 10) == first
        # A call's own seed, instead of the pool's.
        assert pool.map("random_walk", [100] * 10, seed=seed + 1) != first
