r"""The term registry: every distillation loss is registered by name, with its options, and built from a context.

In the manner of torchdistill, a method is a list of names, never a new training loop::

    from dataclasses import dataclass
    from gkd.distill import LossTerm, SelfContext, TermOptions, register_term

    @dataclass                                  # required: its fields are the term's options
    class ToyOptions(TermOptions):              # every term has `weight`
        strength: float = 1.0

    class ToyTerm(LossTerm):
        name = "toy"                            # its value is logged under this name
        def __init__(self, weight, strength):
            super().__init__(weight)
            self.strength = strength
        def forward(self, step):                # unweighted; the trainer multiplies by weight
            return self.strength * step.logits.pow(2).mean()

    @register_term("toy", kind="self", options=ToyOptions, paper="my paper (2026)", summary="what it adds")
    def build_toy(ctx: SelfContext, opts: ToyOptions) -> LossTerm:
        return ToyTerm(opts.weight, opts.strength)

A complete, tested example is in ``docs/usage.md`` ("Writing a term").

``kind`` says who reads the term: ``self`` (a backbone teaching itself, ``gkd train --sd-terms``), ``student`` (a
graph-free student learning a teacher's knowledge, ``gkd distill --terms``), ``transform`` (what changes that
student's input or its terms' node weights before it is built, adding no loss: ``position``, ``reliability``; named in
``--terms`` too) or ``image`` (CNN students, ``gkd cnn``). The options dataclass (a :class:`TermOptions`, so every
term has ``weight``) checks its values in ``__post_init__``; users set them as ``--term-arg toy.strength=2`` or
``term_args: {toy: {strength: 2}}`` in YAML.
Terms registered outside the package are found the same way: import the module that registers them (Python), list it
in ``GKD_PLUGINS=my_terms,./local_terms.py`` (the CLI imports modules by name from ``sys.path``, and runs files named
by path; it never adds a folder to ``sys.path``), or name it under the ``gkd.terms`` entry-point group of an installed
package. A plugin may not take a built-in term's name or alias.

The CLI's choices, its ``--help`` text and the documentation's term tables are read from here (``gkd terms``).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..errors import ConfigError, check
from ..limits import check_option
from ..train.terms import Capabilities, LossTerm

KINDS: dict[str, str] = {
    "self": "a backbone teaches itself (gkd train --self-distill --sd-terms NAMES)",
    "student": "a graph-free student learns a GNN teacher's knowledge (gkd distill --terms NAMES)",
    "transform": "changes a graph-free student's input or its knowledge terms' node weights, adds no loss (gkd "
                 "distill --terms NAMES)",
    "image": "a small CNN learns a CNN teacher (gkd cnn --method NAME)",
}
ALIASES = {"neighbor": "neighbour", "normalized": "normalised"}
# where a name of one kind is typed, the kinds it may name: gkd distill's --terms takes student terms and transforms
NAMED_AS = {"student": ("student", "transform")}


@dataclass
class TermOptions:
    """Options every term has. Subclasses add their knobs (with defaults) and check them in ``__post_init__``."""

    weight: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_option(f.name, getattr(self, f.name))
        check(self.weight >= 0, f"weight={self.weight!r}; expected a finite number >= 0", ConfigError)


@dataclass(frozen=True)
class TermSpec:
    """One registered term: ``build(ctx, options) -> LossTerm``; ``prepare(ctx, options)`` runs before the student
    model exists: a transform's whole work (it changes the student's input, ``position``, or the other terms' node
    weights, ``reliability``; its ``build`` is its ``prepare``, and :meth:`make` gives no term). ``caps`` says what
    the term can do (mini-batches, a late start, unlabelled nodes, a transform): the trainer, the student stage and
    the config checks read it here, without building the term."""

    name: str
    kind: str
    build: Callable[[Any, TermOptions], Any]
    options: type
    paper: str
    summary: str
    prepare: Callable[[Any, TermOptions], None] | None = None
    caps: Capabilities = Capabilities()
    declared: bool = False  # caps given on the entry (then the built term carries them), not read off its class

    @property
    def module(self) -> str:
        return self.build.__module__

    def make(self, ctx: Any, options: TermOptions) -> LossTerm | None:
        """The term for one run (``None`` for a transform, whose work is :attr:`prepare`'s)."""
        term = None if self.kind == "transform" else self.build(ctx, options)
        if term is not None and self.declared:
            term.caps = self.caps
        return term

    def option_defaults(self) -> dict[str, Any]:
        return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(self.options)
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}

    def make_options(self, values: Mapping[str, Any] | None = None) -> TermOptions:
        """The options with ``values`` (``term_args`` of this term) set; unknown keys and wrong types are errors."""
        values = dict(values or {})
        hints = typing.get_type_hints(self.options)
        known = [f.name for f in dataclasses.fields(self.options)]
        unknown = sorted(set(map(str, values)) - set(known))
        check(not unknown, f"term_args {self.name}.{unknown[0] if unknown else ''}: not an option of the "
              f"{self.kind} term {self.name!r}, which takes {', '.join(known)}", ConfigError)
        for key, v in values.items():
            want = typing.get_origin(hints[key]) or hints[key]  # list[int] -> list: the options check the items
            if want is typing.Union or want is types.UnionType:  # Optional[int] or int | None
                want = tuple(typing.get_origin(a) or a for a in typing.get_args(hints[key]))
                want = tuple(type(None) if a is None else a for a in want)
            ok = isinstance(v, want) and not (isinstance(v, bool) and bool not in (want if isinstance(want, tuple)
                                                                                  else (want,)))
            if isinstance(v, str) and float in (want if isinstance(want, tuple) else (want,)):
                try:  # YAML reads nan and inf as strings: name them as the non-finite numbers they stand for
                    finite = math.isfinite(float(v))
                except ValueError:
                    finite = True
                check(finite, f"term_args {self.name}.{key}={v!r} is not finite; expected a finite number",
                      ConfigError)
            if want is float and isinstance(v, int) and not isinstance(v, bool):
                check(abs(v) <= 2**1023, f"term_args {self.name}.{key}={v}; expected a finite number", ConfigError)
                values[key], ok = float(v), True
            expected = " or ".join("None" if a is type(None) else getattr(a, "__name__", str(a))
                                   for a in (want if isinstance(want, tuple) else (want,)))
            check(ok, f"term_args {self.name}.{key}={v!r}; expected {expected}", ConfigError)
        try:
            return self.options(**values)
        except (ConfigError, TypeError, ValueError) as e:  # a plug-in's own checks may raise plain Python errors
            raise ConfigError(f"term_args {self.name}: {e}") from None


_TERMS: dict[tuple[str, str], TermSpec] = {}
_plugins_loaded = False
# The (kind, name) pairs registered by the time plugins load: gkd's own terms (and what the user's Python imported
# first). Taken from the registry, not from a function's __module__, which a plugin can set; None until then.
_BUILTIN: frozenset[tuple[str, str]] | None = None


def register_term(name: str, *, kind: str, options: type = TermOptions, paper: str = "", summary: str = "",
                  prepare: Callable | None = None, term: type | None = None,
                  caps: Capabilities | None = None) -> Callable:
    """Decorator: register ``build(ctx, options)`` as term ``name`` of ``kind`` (see the module docstring).

    What the term can do is declared here: ``term`` (the :class:`LossTerm` class ``build`` returns; its ``caps``) or
    ``caps`` (a :class:`Capabilities`, carried by the built term). Undeclared, a term is full-batch, starts at once
    and teaches the training nodes only. A ``transform`` registers its ``prepare(ctx, options)`` function (it adds
    no loss, so it runs on full and mini-batches alike)."""
    check(kind in KINDS, f"term kind={kind!r}; expected one of {', '.join(KINDS)}", ConfigError)
    check(isinstance(name, str) and name.strip() == name == name.lower() and name and "," not in name
          and "." not in name and "=" not in name, f"term name {name!r}; expected a lower-case word without commas, "
          "dots or '='", ConfigError)
    check(isinstance(options, type) and issubclass(options, TermOptions) and "__dataclass_fields__" in vars(options),
          f"options={options!r}; expected a TermOptions subclass decorated with @dataclass (without it, its fields "
          "are not options)", ConfigError)
    check(prepare is None or kind == "student", f"prepare= is run for student terms only; got kind={kind!r} (a "
          "transform registers its prepare function itself)", ConfigError)
    check(term is None or isinstance(term, type) and issubclass(term, LossTerm), f"term={term!r}; expected the "
          "LossTerm subclass that build returns", ConfigError)
    check(caps is None or isinstance(caps, Capabilities), f"caps={caps!r}; expected a Capabilities record",
          ConfigError)
    declared = caps is not None
    if kind == "transform":
        check(term is None and caps is None, f"transform {name!r}: a transform adds no loss term, so it takes no "
              "term= or caps=", ConfigError)
        caps = Capabilities(minibatch=True, transform=True)
    elif caps is None:
        caps = term.caps if term is not None else Capabilities(transform=prepare is not None)

    check(name not in ALIASES, f"term name {name!r} is an alias of the built-in term {ALIASES.get(name)!r} (its "
          "spelling variant); pick another name", ConfigError)

    def deco(build: Callable) -> Callable:
        old = _TERMS.get((kind, name))
        # a built-in may only be registered again by the very same function (a module imported twice); a plugin's
        # copy of its __module__ and __qualname__ does not make it gkd's
        check(old is None or old.build is build or (_BUILTIN is None or (kind, name) not in _BUILTIN)
              and old.build.__qualname__ == build.__qualname__ and old.module == build.__module__,
              f"{kind} term {name!r} is already registered by {old.module if old else ''}"
              f"{' (a built-in term)' if _BUILTIN and (kind, name) in _BUILTIN else ''}; {_origin(build)} may not "
              "replace it: pick another name", ConfigError)
        shared = next((g for g in NAMED_AS.values() if kind in g), (kind,))  # kinds typed in the same place
        taken = [k for k in shared if k != kind and (k, name) in _TERMS]
        check(not taken, f"{kind} {name!r}: a {taken[0] if taken else ''} term of that name exists, and --terms "
              "names both; pick another name", ConfigError)
        _TERMS[(kind, name)] = TermSpec(name, kind, build, options, paper, summary or (build.__doc__ or "")
                                        .strip().split("\n")[0], build if kind == "transform" else prepare, caps,
                                        declared)
        return build

    return deco


def _origin(build: Callable) -> str:
    """Where ``build`` was written: its code's file (a plugin sets ``__module__`` as easily as any attribute)."""
    code = getattr(build, "__code__", None)
    return code.co_filename if code is not None else getattr(build, "__module__", repr(build))


def _load_plugins() -> None:
    """Import the plugins named in ``$GKD_PLUGINS`` (comma-separated: module names, imported from ``sys.path`` as it
    is, or paths of ``.py`` files) and under the ``gkd.terms`` entry-point group of installed packages. The built-in
    terms registered themselves when :mod:`gkd.distill` was imported, which Python does before this module; the
    names registered by then are recorded first, so that no plugin can take one."""
    global _plugins_loaded, _BUILTIN
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import importlib
    import os
    from importlib.metadata import entry_points

    importlib.import_module("gkd.distill")  # all of gkd's own terms, whoever called first
    importlib.import_module("gkd.vision")  # the image terms (gkd.vision: CNNs, MHGD, BSS/AMKD on images)
    _BUILTIN = frozenset(_TERMS)
    for name in [m.strip() for m in os.environ.get("GKD_PLUGINS", "").split(",") if m.strip()]:
        check(not _is_path(name) or os.path.isfile(name), f"GKD_PLUGINS file {name!r} does not exist or is not a "
              "file; expected a .py file (or a module name)", ConfigError)
        try:
            if _is_path(name):
                _import_file(name)
            else:
                importlib.import_module(name)
        except ConfigError as e:
            raise ConfigError(f"GKD_PLUGINS module {name!r} failed to import: {e}") from None
        except Exception as e:  # a broken plugin is the user's: say which, in one line
            hint = (f" (to run a file, name its path: GKD_PLUGINS=./{name}.py)"
                    if isinstance(e, ModuleNotFoundError) and e.name == name else "")
            raise ConfigError(f"GKD_PLUGINS module {name!r} failed to import: {type(e).__name__}: {e}{hint}") from None
    for ep in entry_points(group="gkd.terms"):
        try:
            ep.load()
        except Exception as e:  # a broken plugin is the user's: say which, in one line
            raise ConfigError(f"gkd.terms plugin {ep.name!r} ({ep.value}) failed to import: "
                              f"{type(e).__name__}: {e}") from None


def _is_path(name: str) -> bool:
    import os

    return name.endswith(".py") or os.sep in name or (os.altsep is not None and os.altsep in name)


def _import_file(name: str) -> None:
    """Run the plugin file ``name`` as a module of its own, without adding its folder to ``sys.path``: a ``yaml/``
    or ``scipy/`` beside it must not stand in for the real one in gkd. The module name is unique to the file's path,
    so two ``terms.py`` in different folders do not clash."""
    import hashlib
    import importlib.util
    import os
    import re
    import sys

    path = os.path.abspath(name)
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    module = f"gkd_plugin_{stem}_{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    if module in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module, path)
    check(spec is not None and spec.loader is not None, f"GKD_PLUGINS file {name!r} cannot be imported; expected a "
          ".py file", ConfigError)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod  # before running it: dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[module]
        raise


def canonical(name: str) -> str:
    """Term names are lower case; ``neighbor`` and ``normalized`` are accepted."""
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def term_names(kind: str) -> tuple[str, ...]:
    """The names a ``kind`` term is typed with (``student``: the student terms and the transforms), in registration
    order."""
    _load_plugins()
    kinds = NAMED_AS.get(kind, (kind,))
    return tuple(n for (k, n) in _TERMS if k in kinds)


def get_term(kind: str, name: str) -> TermSpec:
    """The term typed as ``name`` where a ``kind`` term is expected (``student``: a student term or a transform)."""
    _load_plugins()
    key = canonical(name)
    spec = next((_TERMS[(k, key)] for k in NAMED_AS.get(kind, (kind,)) if (k, key) in _TERMS), None)
    check(spec is not None, f"{name!r} is not a registered {kind} term{' or transform' * (kind in NAMED_AS)}; "
          f"expected one of {', '.join(term_names(kind))}", ConfigError)
    return spec


def parse_names(kind: str, names: str | Iterable[str] | None, what: str = "terms") -> tuple[str, ...]:
    """A comma string or list of term names → canonical names (each known, none twice)."""
    if names is None:
        return ()
    items = [t.strip() for t in (names.split(",") if isinstance(names, str) else names) if str(t).strip()]
    out: list[str] = []
    for t in items:
        spec = get_term(kind, t)  # its own kind in the message: a transform is typed where student terms are
        check(spec.name not in out, f"{spec.kind} term {spec.name!r} given twice in {what}={names!r}; expected each "
              "at most once", ConfigError)
        out.append(spec.name)
    return tuple(out)


def build_options(kind: str, names: Iterable[str], term_args: Mapping[str, Any] | None) -> dict[str, TermOptions]:
    """Every switched-on term's options, from ``term_args`` (``{term: {key: value}}``), checked before any training.
    Arguments for a term that is not switched on would be ignored without a word, so they are refused."""
    term_args = dict(term_args or {})
    check(all(isinstance(v, Mapping) for v in term_args.values()),
          f"term_args={term_args!r}; expected a mapping term -> {{option: value}}", ConfigError)
    names = tuple(names)
    given = {canonical(k): v for k, v in term_args.items()}
    inactive = sorted(set(given) - set(names))
    check(not inactive, f"term_args given for {kind} term(s) {inactive} that are not switched on "
          f"({', '.join(names) or 'none'})", ConfigError)
    return {n: get_term(kind, n).make_options(given.get(n)) for n in names}


def parse_term_arg(text: str) -> tuple[str, str, Any]:
    """``"neighbour.steps=5"`` → ``("neighbour", "steps", 5)`` (the value parsed as YAML by the caller)."""
    key, sep, value = text.partition("=")
    term, dot, option = key.strip().partition(".")
    check(bool(sep and dot and term and option), f"term argument {text!r}; expected TERM.OPTION=VALUE, e.g. "
          "neighbour.steps=5", ConfigError)
    return term, option, value


def table(kind: str | None = None) -> list[dict[str, Any]]:
    """One row per registered term: what ``gkd terms`` prints and the docs' term tables show."""
    _load_plugins()
    specs = sorted(_TERMS.values(), key=lambda s: list(KINDS).index(s.kind))  # stable: registration order within
    return [{"name": s.name, "kind": s.kind, "paper": s.paper, "summary": s.summary, "module": s.module,
             "options": s.option_defaults(), "caps": s.caps.describe()} for s in specs if kind is None or s.kind == kind]


def markdown_table(kind: str | None = None) -> str:
    """:func:`table` as Markdown (``gkd terms --markdown``; the docs' term table)."""
    lines = ["| term | kind | paper | file | what it adds | can | options (defaults) |",
             "|---|---|---|---|---|---|---|"]
    for r in table(kind):
        opts = ", ".join(f"`{k}={v}`" for k, v in r["options"].items())
        path = r["module"].replace(".", "/") + ".py"
        lines.append(f"| `{r['name']}` | {r['kind']} | {r['paper']} | `{path}` | {r['summary']} | {r['caps']} | "
                     f"{opts} |")
    return "\n".join(lines) + "\n"


@dataclass
class SelfContext:
    """What a ``self`` term is built from: the backbone's shape, the run's length and its early-stopping patience."""

    num_classes: int
    hidden_dims: list[int]  # widths of the backbone's hidden taps
    epochs: int
    patience: int = 100


@dataclass
class StudentContext:
    """What a ``student`` term is built from. ``prepare`` hooks may set ``positions`` (extra input columns of every
    node) and ``node_weight`` (per-node weights of the knowledge terms) before the others are built."""

    data: Any                # the student's PyG Data (y, masks; x as the student reads it)
    knowledge: Any           # gkd.distill.knowledge.Knowledge over all N nodes
    edge_index: Any          # the graph the teacher saw
    temperature: float
    kd_weight: float         # 1 - kd_lambda
    epochs: int
    seed: int
    teacher: Any = None      # the live teacher (TeacherView), absent for a book
    positions: Any = None
    node_weight: Any = None
    patience: int = 100      # the student's early-stopping patience


@dataclass
class ImageContext:
    """What an ``image`` term is built from: the CNN teacher stage and the split."""

    teacher: Any             # gkd.vision.pipeline.CNNTeacher
    split: Any               # gkd.vision.digits.ImageSplit
    student_channels: list[int]
    temperature: float
    epochs: int
    seed: int
