"""A stage's cache lookups start together when the stage starts, with the keys the steps then
compute (config steps between them included), and give the same result as one by one."""

from __future__ import annotations

from dataclasses import replace

from core.build.options import CacheOptions
from tests.cache.conftest import CachedBuilds, cached_steps
from tests.fixtures.proxy import Fault, fault_proxy
from tests.fixtures.registry import make_client

DOCKERFILE = """\
FROM {base}
COPY app /app
RUN cat /app/main.txt > /copied
USER nobody
ENV MODE=quiet
RUN echo "$MODE" > /tmp/mode
WORKDIR /tmp
COPY conf/ /etc/app/
"""
FILES = {"app/main.txt": "main\n", "conf/a.ini": "a\n"}
#         FROM   COPY  RUN   USER   ENV    RUN   WORKDIR COPY
ALL_HIT = [False, True, True, False, False, True, False, True]


def test_lookups_of_a_stage_overlap_and_all_hit(cached: CachedBuilds) -> None:
    with fault_proxy(cached.registry.host) as proxy:
        client = make_client(cached.registry.host, proxy.host)
        builds = replace(cached, client=client)
        cache = CacheOptions(enabled=True, repo=f"{proxy.host}/cache/overlap")
        builds.write(FILES)
        first = builds.build(DOCKERFILE.format(base=cached.busybox), cache=cache)
        assert not any(cached_steps(first))
        manifests = "/v2/cache/overlap/manifests/"
        # answered in full, 0.4 s late (a "truncation" after more bytes than there are)
        proxy.add(Fault(method="GET", path_contains=manifests, delay=0.4,
                        truncate_after=1 << 30, times=10**6))
        before = len(proxy.seen)
        try:
            second = builds.build(cache=cache)
        finally:
            client.close()
        seen = [s for s in proxy.seen[before:] if "/v2/cache/overlap/" in s.path]
    assert cached_steps(second) == ALL_HIT
    assert [layer.digest for layer in second.layers] == [layer.digest for layer in first.layers]
    gets = [s for s in seen if s.method == "GET" and manifests in s.path]
    assert len(gets) == 4  # one lookup per RUN / COPY, none sent twice
    first_blob = next(n for n, s in enumerate(seen) if "/blobs/" in s.path)
    # one at a time, a lookup's config GET follows its manifest GET; here the manifest GETs
    # of the other steps were answered (after the proxy's delay) before any config GET
    assert sum(1 for s in seen[:first_blob] if manifests in s.path) >= 2
