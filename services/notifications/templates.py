"""Message text: templates with {variables}, rendered in Chinese and English."""

import re
from collections.abc import Mapping

from services.notifications import config

VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def variables_of(*texts: str) -> list[str]:
    """The variable names the texts use, sorted, each once."""
    return sorted({name for text in texts for name in VARIABLE.findall(text)})


def render(text: str, values: Mapping[str, str]) -> str:
    """Replaces each {name} with its value; every name must have one."""
    return VARIABLE.sub(lambda m: values[m.group(1)], text)


def render_languages(
    texts: Mapping[str, str], values: Mapping[str, str]
) -> dict[str, str]:
    """Renders each language's text; a missing language falls back to Chinese,
    then to whichever language the template has."""
    rendered = {lang: render(text, values) for lang, text in texts.items()}
    fallback = rendered.get(config.DEFAULT_LANGUAGE) or next(
        iter(rendered.values()), ""
    )
    return {lang: rendered.get(lang, fallback) for lang in config.LANGUAGES}
