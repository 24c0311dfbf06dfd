"""Meta.held: the tokens a vault has held, with their first issue time, bounded."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.secret import Secret
from vault.store.model import MAX_HELD, Meta

NOW = 1_800_000_000


def test_the_first_issue_time_wins_and_survives_a_round_trip() -> None:
    meta = Meta.new()
    meta.hold(Secret("tok-a"), NOW - 100, None, NOW)
    meta.hold(Secret("tok-a"), NOW, None, NOW)
    again = Meta.from_json(meta.to_json())
    assert again.first_held(Secret("tok-a")) == NOW - 100
    assert again.first_held(Secret("tok-b")) is None
    assert b"tok-a" not in meta.to_json()  # keyed fingerprints, never the token


# Lists of at least MAX_HELD + 1 offsets are big by design: hypothesis's "too slow to
# generate" check fails them on a loaded machine, which says nothing about the code.
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.integers(-3600, 3600), min_size=MAX_HELD + 1, max_size=MAX_HELD + 300))
def test_bounded_and_the_longest_lived_are_kept(offsets: list[int]) -> None:
    meta = Meta.new()
    for i, offset in enumerate(offsets):
        meta.hold(Secret(f"tok-{i}"), NOW - 10, NOW + offset, NOW)
        assert len(meta.held) <= MAX_HELD
    live = [(o, i) for i, o in enumerate(offsets) if o > 0]
    kept = {i for i, _ in enumerate(offsets) if meta.first_held(Secret(f"tok-{i}")) is not None}
    assert all(offsets[i] > 0 for i in kept) or len(live) < MAX_HELD  # swept: none expired
    last = len(offsets) - 1
    if offsets[last] > 0:
        assert last in kept  # a live token just held is never the one forgotten
