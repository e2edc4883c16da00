"""The mux's routing table (pure)."""
from hypothesis import given, strategies as st

from introspect.routing import ID_LIMIT, Router, Subscriptions


def test_rewrite_and_back():
    r = Router()
    a = r.outbound("A", 7, 2, now=0)
    b = r.outbound("B", 7, 2, now=0)        # same client id, other client
    assert a != b and 0 not in (a, b)
    pb = r.inbound(b)
    assert (pb.client, pb.client_id) == ("B", 7)
    pa = r.inbound(a)
    assert (pa.client, pa.client_id) == ("A", 7)
    assert r.inbound(a) is None              # answered once only
    assert r.inbound(0) is None              # id 0 is never a reply


def test_drop_client_forgets_its_requests():
    r = Router()
    a1 = r.outbound("A", 1, 2, 0)
    b1 = r.outbound("B", 1, 2, 0)
    a2 = r.outbound("A", 2, 2, 0)
    assert r.drop_client("A") == 2
    assert r.inbound(a1) is None and r.inbound(a2) is None
    assert r.inbound(b1).client == "B"


def test_expire():
    r = Router(expiry=10)
    old = r.outbound("A", 1, 2, now=0)
    new = r.outbound("A", 2, 2, now=8)
    gone = r.expire(now=12)
    assert [p.client_id for p in gone] == [1]
    assert r.inbound(old) is None and r.inbound(new).client_id == 2


def test_ids_wrap_skipping_zero_and_busy():
    r = Router()
    r.next_id = ID_LIMIT - 1
    a = r.outbound("A", 1, 2, 0)
    b = r.outbound("A", 2, 2, 0)
    assert (a, b) == (ID_LIMIT - 1, 1)
    r.next_id = 1
    c = r.outbound("A", 3, 2, 0)            # 1 is busy: skipped
    assert c == 2


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 5), st.booleans()),
                max_size=60))
def test_pending_ids_unique_and_routed(ops):
    r = Router()
    live = {}
    for client, cid, answer in ops:
        if answer and live:
            mid = next(iter(live))
            p = r.inbound(mid)
            assert (p.client, p.client_id) == live.pop(mid)
        else:
            mid = r.outbound(client, cid, 1, 0)
            assert mid != 0 and mid not in live
            live[mid] = (client, cid)
    assert set(r.pending) == set(live)


def test_subscriptions():
    s = Subscriptions()
    s.subscribe("A", 0, 0xFFFF)
    s.subscribe("B", 0x100, 0x1FF)
    assert s.targets(0x100) == ["A", "B"]
    assert s.targets(0x50) == ["A"]
    s.unsubscribe("A", 0x100, 0x100)
    assert s.targets(0x100) == ["B"]
    assert s.targets(0x101) == ["A", "B"]
    assert s.ranges["A"] == [(0, 0xFF), (0x101, 0xFFFF)]
    s.drop_client("B")
    assert s.targets(0x101) == ["A"]
    s.unsubscribe("A", 0, 0xFFFF)
    assert "A" not in s.ranges and s.targets(5) == []


def test_subscriptions_merge_and_reversed():
    s = Subscriptions()
    s.subscribe("A", 10, 5)
    s.subscribe("A", 11, 20)
    s.subscribe("A", 8, 12)
    assert s.ranges["A"] == [(5, 20)]
