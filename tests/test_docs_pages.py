"""The user guide stays true to the code.

* every skopt_nn optimizer (``skopt_nn.optim.available(wrappers=True)`` minus torch's built-ins and
  ``pytorch_optimizer:*``, decided by ``OptimizerSpec.origin``) has a section in a family page under
  ``docs/optimizers/`` with a ``$$`` math block, its paper (first author, arXiv id), its registry flags, its search
  space (keys and ranges) and, for every optimizer class, its constructor defaults, all as the registry and the code
  say;
* the B3 step-cost ratios quoted there are those of ``benchmarks/RESULTS.md``;
* every relative link (and ``#anchor``) in ``docs/*.md`` and ``docs/optimizers/*.md`` resolves;
* every ``python`` block of the family pages compiles;
* ``docs/index.md`` links every page of ``docs/``, and ``docs/optimizers.md`` every family page.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import skopt_nn.optim as optim
from skopt_nn._space import Categorical, Dimension, Float, Int, OneMinusLog, Tuple

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FAMILY = DOCS / "optimizers"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

FLAGS = (
    "needs_closure",
    "needs_create_graph",
    "needs_module",
    "lr_free",
    "supports_foreach",
    "wraps_optimizer",
    "stochastic",
)

_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
_MATH = re.compile(r"^\$\$[ \t]*\n(.+?)\n\$\$[ \t]*$", re.M | re.S)
_FIELD = re.compile(r"^\*\*(\w[\w ]*?)(?: \(([^)]*)\))?:\*\*\s*(.*)$", re.S)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


# --------------------------------------------------------------------------------------------------- parsing


def _family_pages() -> list[Path]:
    return sorted(FAMILY.glob("*.md"))


def _guide_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md")) + _family_pages()


def _without_code(text: str) -> str:
    """``text`` with fenced blocks blanked (line numbers kept) and inline code spans removed."""
    text = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return re.sub(r"`[^`\n]*`", "", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if match:
            slug = _slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


class Section:
    """A level-2 section of a family page, split into paragraphs (fenced code removed)."""

    def __init__(self, page: Path, heading: str, body: str) -> None:
        self.page, self.heading, self.body = page, heading, body
        prose = _FENCE.sub("", body)
        self.paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", prose) if p.strip()]

    def __repr__(self) -> str:
        return f"{self.page.name}#{_slug(self.heading)}"

    def fields(self, label: str) -> Iterator[tuple[list[str], str]]:
        """``(names in the parentheses, text after the colon)`` of the paragraphs ``**<label> (...):** text``."""
        for paragraph in self.paragraphs:
            match = _FIELD.match(paragraph)
            if match and match.group(1) == label:
                yield re.findall(r"`([^`]+)`", match.group(2) or ""), match.group(3)

    def field_for(self, label: str, name: str) -> str | None:
        for names, text in self.fields(label):
            if name in names:
                return text
        return None


def _sections(page: Path) -> list[Section]:
    parts = re.split(r"^## (.+)$", page.read_text(), flags=re.M)
    return [Section(page, parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


@functools.cache
def _all_sections() -> tuple[Section, ...]:
    return tuple(s for page in _family_pages() for s in _sections(page))


def _registry_names(section: Section) -> list[str]:
    names: list[str] = []
    for _, text in section.fields("Registry"):
        names += re.findall(r"`([a-z0-9_]+)`", text.split("→")[0])
    return names


def _section_of(name: str) -> Section:
    found = [s for s in _all_sections() if name in _registry_names(s)]
    assert found, f"no section of docs/optimizers/*.md lists `{name}` on its **Registry:** line"
    assert len(found) == 1, f"`{name}` is documented in several sections: {found}"
    return found[0]


def _skopt_nn_names() -> list[str]:
    return [n for n in optim.available(wrappers=True) if optim.get(n).origin == "skopt_nn"]


def _is_composition(name: str) -> bool:
    target = optim.get(name).optimizer
    return isinstance(target, functools.partial) and "base" in target.keywords


def _numbers(text: str) -> list[float]:
    return [float(x) for x in _NUMBER.findall(text)]


def _bounds(dim: Dimension) -> list[float]:
    if isinstance(dim, (Float, Int, OneMinusLog)):
        return [float(dim.low), float(dim.high)]
    if isinstance(dim, Tuple):
        return [b for item in dim.items for b in _bounds(item)]
    return []


NAMES = _skopt_nn_names()
DIRECT = [n for n in NAMES if not _is_composition(n)]


# --------------------------------------------------------------------------------------------------- optimizers


def test_the_registry_has_skopt_nn_optimizers() -> None:
    # the parametrised tests below must not pass on an empty list
    assert len(NAMES) >= 30 and "soap" in NAMES and "cadamw" in NAMES
    assert "adam" not in NAMES and not any(n.startswith("pytorch_optimizer:") for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_has_a_section_with_its_math_and_paper(name: str) -> None:
    section = _section_of(name)
    blocks = [b for b in _MATH.findall(section.body) if b.strip()]
    assert blocks, f"{section} documents `{name}` but has no $$ math block"
    assert any("=" in b or r"\leftarrow" in b for b in blocks), f"{section}: the math block states no update"
    spec = optim.get(name)
    first_author = re.split(r"[,&]", spec.paper)[0].strip()
    assert first_author in section.body, f"{section} does not cite {spec.paper!r}"
    for arxiv in sorted(set(re.findall(r"\d{4}\.\d{4,5}", spec.paper + " " + spec.url))):
        assert f"arXiv:{arxiv}" in section.body, f"{section} does not give the arXiv id {arxiv} of `{name}`"


@pytest.mark.parametrize("name", NAMES)
def test_documented_flags_are_the_registry_flags(name: str) -> None:
    section = _section_of(name)
    text = section.field_for("Flags", name)
    assert text is not None, f"{section} has no **Flags (`{name}`):** paragraph"
    documented = set(re.findall(r"`([^`]+)`", text))
    expected = {flag for flag in FLAGS if getattr(optim.get(name), flag)}
    assert documented == expected, f"{section}, flags of `{name}`: documented {documented}, registry {expected}"


@pytest.mark.parametrize("name", DIRECT)
def test_documented_search_space_is_the_registry_space(name: str) -> None:
    section = _section_of(name)
    text = section.field_for("Searched", name)
    assert text is not None, f"{section} has no **Searched (`{name}`):** paragraph"
    space = dict(optim.get(name).search_space())
    documented = set(re.findall(r"`(optimizer__\w+)`", text))
    assert documented == set(space), f"{section}, space of `{name}`: documented {documented}, registry {set(space)}"
    segments = {key: seg for seg in text.split(";") for key in re.findall(r"`(optimizer__\w+)`", seg)}
    for key, dim in space.items():
        shown = _numbers(segments[key])
        for bound in _bounds(dim):
            assert any(math.isclose(bound, x, rel_tol=1e-12) for x in shown), (
                f"{section}: `{key}` of `{name}` should show the bound {bound:g} of {dim}"
            )
        if isinstance(dim, Categorical):
            for choice in dim.choices:
                assert str(choice) in segments[key], f"{section}: `{key}` of `{name}` should list {choice!r}"


def _defaults() -> dict[str, tuple[Section, dict[str, Any]]]:
    found: dict[str, tuple[Section, dict[str, Any]]] = {}
    for section in _all_sections():
        for names, text in section.fields("Defaults"):
            code = re.fullmatch(r"`([^`]*)`", text.strip())
            assert len(names) == 1 and code, f"{section}: write **Defaults (`Class`):** `name=value, ...`"
            assert names[0] not in found, f"{section}: a second **Defaults (`{names[0]}`):** paragraph"
            call = ast.parse(f"f({code.group(1)})", mode="eval").body
            assert isinstance(call, ast.Call) and not call.args
            found[names[0]] = (section, {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg})
    return found


def test_documented_defaults_are_the_constructors() -> None:
    documented = _defaults()
    classes = {spec.optimizer_class for spec in map(optim.get, NAMES)}
    assert None not in classes, "every skopt_nn optimizer is a class (or a partial of one)"
    for cls in sorted((c for c in classes if c is not None), key=lambda c: c.__name__):
        assert cls.__name__ in documented, f"no **Defaults (`{cls.__name__}`):** paragraph in docs/optimizers/"
        section, values = documented[cls.__name__]
        signature = inspect.signature(cls.__init__)
        expected = {
            k: p.default
            for k, p in signature.parameters.items()
            if p.default is not inspect.Parameter.empty and k != "foreach"
        }
        assert values == expected, f"{section}: defaults of {cls.__name__} documented {values}, code {expected}"


def _b3_ratios() -> dict[str, str]:
    text = RESULTS.read_text()
    match = re.search(r"^## B3\b.*?(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, "benchmarks/RESULTS.md has no B3 section"
    rows = re.findall(r"^\| ([a-z0-9_]+)(?: \([^)]*\))? \| ([0-9.]+) \|", match.group(0), flags=re.M)
    return dict(rows)


def test_quoted_step_costs_are_benchmark_b3() -> None:
    if not RESULTS.exists():
        pytest.skip("benchmarks/RESULTS.md is not in this checkout")
    ratios = _b3_ratios()
    quoted = [name for name in NAMES if name in ratios]
    assert len(quoted) >= 20, "the B3 table lost its rows"
    for name in quoted:
        section = _section_of(name)
        costs = [text for _, text in section.fields("Step cost")]
        assert any(f"`{name}` {ratios[name]}" in text for text in costs), (
            f"{section}: its **Step cost** paragraph should quote `{name}` {ratios[name]} (benchmarks/RESULTS.md, B3)"
        )


def test_the_overview_table_links_each_optimizer_to_its_section() -> None:
    rows = re.findall(
        r"^\| `([a-z0-9_]+)` \|.*\((optimizers/[\w.]+)#([\w-]+)\) \|$", (DOCS / "optimizers.md").read_text(), re.M
    )
    linked = {name: (page, anchor) for name, page, anchor in rows}
    for name in optim.available():
        if optim.get(name).origin != "skopt_nn":
            continue
        assert name in linked, f"the row of `{name}` in docs/optimizers.md does not link its family page section"
        section = _section_of(name)
        assert (DOCS / linked[name][0]) == section.page and linked[name][1] == _slug(section.heading), (
            f"docs/optimizers.md links `{name}` to {linked[name]}, but it is documented in {section}"
        )


@pytest.mark.parametrize("page", _family_pages(), ids=lambda p: p.name)
def test_python_blocks_of_family_pages_compile(page: Path) -> None:
    blocks = re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", page.read_text(), re.M | re.S)
    assert blocks, f"{page.name} has no usage example"
    for i, block in enumerate(blocks):
        compile(block, f"{page.name} (python block {i + 1})", "exec")


# --------------------------------------------------------------------------------------------------- links


def _links(page: Path) -> list[str]:
    return [t for t in _LINK.findall(_without_code(page.read_text())) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", _guide_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_relative_links_resolve(page: Path) -> None:
    for target in _links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)} links to {target!r}: {resolved} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.relative_to(ROOT)} links to {target!r}: no such heading"


def test_slug_follows_github() -> None:
    assert _slug("Cautious optimizers (C-AdamW, C-Lion)") == "cautious-optimizers-c-adamw-c-lion"
    assert _slug("The math: one page per family") == "the-math-one-page-per-family"
    assert _slug("`adagrad_norm` and L-DoG") == "adagrad_norm-and-l-dog"


def test_index_links_every_page_and_the_overview_every_family_page() -> None:
    index = {(DOCS / t.partition("#")[0]).resolve() for t in _links(DOCS / "index.md")}
    for page in _guide_pages():
        if page.name != "index.md":
            assert page.resolve() in index, f"docs/index.md does not link {page.relative_to(DOCS)}"
    overview = {(DOCS / t.partition("#")[0]).resolve() for t in _links(DOCS / "optimizers.md")}
    for page in _family_pages():
        assert page.resolve() in overview, f"docs/optimizers.md does not link {page.relative_to(DOCS)}"
