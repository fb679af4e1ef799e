"""The registry client a build makes for itself when the caller gives none.

kaniko's flags name hosts indirectly: `--insecure` makes every destination registry plain
HTTP, `--insecure-pull` every registry images are pulled from; `--insecure-registry` lists
hosts for both. The `--skip-tls-verify*` family works the same way for TLS verification.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.build.options import BuildOptions
from core.image.reference import Reference, parse_reference
from core.plan import BuildPlan, ImageBase
from core.registry import RegistryClient, default_credentials


def make_registry(options: BuildOptions, plan: BuildPlan, destinations: Sequence[Reference],
                  *, on_secret: Callable[[str], None] | None = None) -> RegistryClient:
    """A client for the build's registries; `on_secret` hears each credential and token it
    obtains (see `RegistryClient`)."""
    settings = options.registry
    push_hosts = {ref.registry for ref in destinations}
    pull_hosts = {parse_reference(image.ref).registry for image in _images(plan)}
    pull_hosts |= set(settings.registry_mirrors)
    insecure = set(settings.insecure_registries)
    if settings.insecure:
        insecure |= push_hosts
    if settings.insecure_pull:
        insecure |= pull_hosts
    skip_verify = set(settings.skip_tls_verify_registries)
    if settings.skip_tls_verify:
        skip_verify |= push_hosts
    if settings.skip_tls_verify_pull:
        skip_verify |= pull_hosts
    return RegistryClient(insecure_registries=sorted(insecure),
                          skip_tls_verify=sorted(skip_verify),
                          ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
                          retries=max(settings.push_retry, 1),
                          credentials=default_credentials(settings.docker_config,
                                                          settings.helper_env),
                          on_secret=on_secret)


def _images(plan: BuildPlan) -> list[ImageBase]:
    """Every image any stage may pull (pruned stages included: triggers may bring them in)."""
    found: list[ImageBase] = []
    for stage in plan.all_stages:
        if isinstance(stage.base, ImageBase):
            found.append(stage.base)
        found.extend(stage.images)
    return found
