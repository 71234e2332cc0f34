"""Which providers the gateway may call and which provider and model each alias runs on, read from the
environment once, when the settings load (``config/settings.py`` calls ``llm_config_from_env``).

Plain Python, no Django settings: the settings module imports it. The gateway reads the result from
``settings.LLM_PROVIDERS`` / ``LLM_ALIAS_PROVIDERS`` / ``LLM_MODELS`` / ``LLM_EMBEDDING_MODELS``.

A provider is a name (``openai``, ``gemini``, ``local``…) with a kind that says how to talk to it:

* ``openai``: any endpoint speaking OpenAI's Chat Completions (``Authorization: Bearer``); the default.
* ``gemini``: Gemini's OpenAI-compatible endpoint (default base URL below); reports thinking tokens apart
  from ``completion_tokens``.
* ``azure``: Azure OpenAI. The base URL is the resource endpoint (``https://<resource>.openai.azure.com``),
  an ``api-version`` is required, the key goes in an ``api-key`` header and the alias's model is the
  *deployment* name (``/openai/deployments/<deployment>/chat/completions?api-version=…``).
* ``vllm``, ``ollama``: self-hosted; may have no key (Ollama's default base URL below).

Environment (``NAME`` is the provider's name upper-cased, ``-`` as ``_``)::

    LLM_PROVIDERS=openai,gemini                    # the providers besides the default one
    LLM_PROVIDER_NAME=openai                       # the default provider: aliases without a prefix
    LLM_PROVIDER_GEMINI_KIND=gemini                # default: the name when it is a kind, else openai
    LLM_PROVIDER_GEMINI_BASE_URL=…                 # default: the kind's (Gemini, Ollama), else required
    LLM_PROVIDER_GEMINI_API_KEY=…                  # or LLM_PROVIDER_GEMINI_API_KEY_FILE
    LLM_PROVIDER_AZURE_API_VERSION=2024-10-21      # azure only, required
    LLM_MODEL_MAIN=gemini:gemini-2.5-flash         # provider prefix optional

The default provider keeps the single-provider variables: its key and base URL are ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL`` unless its own ``LLM_PROVIDER_<NAME>_*`` are set, and its kind is ``openai`` unless
``LLM_PROVIDER_<NAME>_KIND`` says otherwise (so ``LLM_PROVIDER_NAME=azure`` alone still only renames it).

A model may contain colons (Ollama's ``llama3.2:3b``): only a prefix that names a configured provider, or
one of the kinds, is read as a provider.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

KINDS = ("openai", "gemini", "azure", "vllm", "ollama")
KEYLESS_KINDS = frozenset({"vllm", "ollama"})  # self-hosted servers that often run without a key
DEFAULT_BASE_URLS = {
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai/",
    "ollama": "http://localhost:11434/v1",
}
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")


@dataclass(frozen=True)
class ProviderConfig:
    """One named OpenAI-compatible endpoint. ``uses_openai_env``: the default provider configured by the
    single-provider variables, whose key and base URL the gateway reads from ``settings.OPENAI_API_KEY`` /
    ``settings.OPENAI_BASE_URL`` at call time (tests point those at the fake server)."""

    name: str
    kind: str = "openai"
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    api_version: str = ""
    uses_openai_env: bool = False

    @property
    def needs_key(self) -> bool:
        return self.kind not in KEYLESS_KINDS

    @property
    def usable(self) -> bool:
        """It can be called: it has a key, or its kind runs without one."""
        return bool(self.api_key) or not self.needs_key


@dataclass(frozen=True)
class LLMConfig:
    providers: dict[str, ProviderConfig]
    default_provider: str
    models: dict[str, str]  # chat alias -> model (without the provider prefix)
    embedding_models: dict[str, str]  # embedding alias -> model
    alias_providers: dict[str, str]  # every alias (chat and embedding) -> provider name
    simulated: bool  # no provider can be called: the offline simulator answers everything
    warnings: list[str]  # development only: aliases that fall back to the simulator, and why


def env_name(provider: str) -> str:
    """``LLM_PROVIDER_<NAME>`` for a provider name: upper-cased, ``-`` as ``_``."""
    return "LLM_PROVIDER_" + provider.upper().replace("-", "_")


def split_model(value: str, providers: Mapping[str, object], default_provider: str) -> tuple[str, str]:
    """(provider, model) of ``[provider:]model``. The prefix counts only when it names a configured provider
    or a kind; otherwise the whole value is the model (Ollama tags such as ``llama3.2:3b`` have colons)."""
    prefix, colon, rest = value.partition(":")
    if colon and rest and (prefix in providers or prefix in KINDS):
        return prefix, rest
    return default_provider, value


def _provider(
    name: str,
    *,
    is_default: bool,
    value: Callable[[str], str],
    secret: Callable[[str], str],
    openai_api_key: str,
    openai_base_url: str,
) -> ProviderConfig:
    if not _NAME.match(name):
        raise ImproperlyConfigured(
            f"LLM provider name {name!r} is not valid: use lower-case letters, digits, '-' or '_' "
            "(it names the provider in LLM_MODEL_* prefixes and LLM_PROVIDER_<NAME>_* variables)."
        )
    prefix = env_name(name)
    kind = value(f"{prefix}_KIND").strip().lower()
    if not kind:
        kind = "openai" if is_default or name not in KINDS else name
    if kind not in KINDS:
        raise ImproperlyConfigured(f"{prefix}_KIND must be one of {', '.join(KINDS)}, got {kind!r}.")
    api_key = secret(f"{prefix}_API_KEY")
    base_url = value(f"{prefix}_BASE_URL")
    uses_openai_env = is_default and not api_key and not base_url
    if is_default:
        api_key = api_key or openai_api_key
        base_url = base_url or openai_base_url
    base_url = base_url or DEFAULT_BASE_URLS.get(kind, "")
    api_version = value(f"{prefix}_API_VERSION")
    if kind == "azure":
        if not base_url:
            raise ImproperlyConfigured(
                f"{prefix}_BASE_URL is required for an Azure provider: the resource endpoint, "
                "e.g. https://my-resource.openai.azure.com"
            )
        if not api_version:
            raise ImproperlyConfigured(f"{prefix}_API_VERSION is required for an Azure provider, e.g. 2024-10-21")
    elif kind in ("vllm",) and not base_url:
        raise ImproperlyConfigured(f"{prefix}_BASE_URL is required for a vLLM provider, e.g. http://gpu-box:8000/v1")
    return ProviderConfig(
        name=name,
        kind=kind,
        base_url=base_url,
        api_key=api_key,
        api_version=api_version,
        uses_openai_env=uses_openai_env,
    )


def llm_config_from_env(
    *,
    names: list[str],
    default_provider: str,
    models: Mapping[str, str],
    embedding_models: Mapping[str, str],
    value: Callable[[str], str],
    secret: Callable[[str], str],
    openai_api_key: str,
    openai_base_url: str,
    production: bool,
) -> LLMConfig:
    """Providers and routes from the environment. ``models``/``embedding_models``: alias -> ``[provider:]model``
    as set; ``value(NAME)``/``secret(NAME)`` read one variable ("" when unset; ``secret`` also reads
    ``NAME_FILE``).

    No usable provider at all: the offline simulator answers (``simulated``), in production too (a demo
    deployment runs without a key). Otherwise every alias must name a configured provider that can be
    called: in production anything else is ``ImproperlyConfigured`` now, not an error at the first call; in
    development that alias falls back to the simulator and ``warnings`` says so."""
    default_provider = default_provider.strip().lower() or "openai"
    listed = [n.strip().lower() for n in names if n.strip()]
    providers: dict[str, ProviderConfig] = {}
    for name in [default_provider, *listed]:
        if name not in providers:
            providers[name] = _provider(
                name,
                is_default=name == default_provider,
                value=value,
                secret=secret,
                openai_api_key=openai_api_key,
                openai_base_url=openai_base_url,
            )
    routes: dict[str, tuple[str, str]] = {}
    for alias, spec in [*models.items(), *embedding_models.items()]:
        provider, model = split_model(spec.strip(), providers, default_provider)
        if not model:
            raise ImproperlyConfigured(f"LLM_MODEL_{alias.upper()} names no model.")
        routes[alias] = (provider, model)

    # Armed: some provider can be called (a key, or a self-hosted one listed on purpose).
    armed = any(p.api_key for p in providers.values()) or any(
        providers[n].usable for n in listed if n != default_provider
    )
    warnings: list[str] = []
    if armed:
        for alias, (provider, _) in routes.items():
            variable = f"LLM_MODEL_{alias.upper()}"
            config = providers.get(provider)
            if config is None:
                problem = (
                    f"{variable} runs on provider {provider!r}, which is not configured: add it to LLM_PROVIDERS "
                    f"(now {', '.join(providers)}) with its {env_name(provider)}_* variables."
                )
            elif not config.usable:
                key = "OPENAI_API_KEY" if config.uses_openai_env else f"{env_name(provider)}_API_KEY"
                problem = f"{variable} runs on provider {provider!r}, which has no API key: set {key}."
            else:
                continue
            if production:
                raise ImproperlyConfigured(problem)
            warnings.append(problem + " Until then that alias uses the offline simulator.")
    return LLMConfig(
        providers=providers,
        default_provider=default_provider,
        models={alias: routes[alias][1] for alias in models},
        embedding_models={alias: routes[alias][1] for alias in embedding_models},
        alias_providers={alias: provider for alias, (provider, _) in routes.items()},
        simulated=not armed,
        warnings=warnings,
    )
