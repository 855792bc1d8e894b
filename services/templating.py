"""Tenant-written Jinja2 templates (a policy's system prompt and user template), compiled
and rendered with bounded time and memory.

Jinja2's sandbox keeps templates away from Python internals but not from the CPU or the
heap: nested ``range`` loops run for ever, ``'x' * 10**9`` or a chain of ``{% set a = a ~
a %}`` allocates gigabytes, ``'x'|center(10**9)`` or ``'{:>999999999}'.format(1)`` too. A
template is therefore compiled by :class:`BoundedEnvironment`, which

- rewrites the parsed template so that every ``for`` loop iterates through a counting
  guard, every piece of output and every ``~`` concatenation is measured before it is
  built, and refuses recursive loops and ``extends``/``include``/``import``;
- intercepts every arithmetic operator, every call (only macros, the loop/cycler/joiner
  helpers and a list of non-growing ``str``/``dict``/``list`` methods may be called) and
  every filter (a whitelist; the ones whose output can grow multiplicatively - ``center``,
  ``indent``, ``replace``, ``join`` - are checked before they run);
- charges everything to a per-render :class:`Budget`: steps (loop iterations, calls,
  operators, attribute lookups), characters produced (outputs, concatenations, results of
  filters and methods), and a wall-clock limit checked at every step.

A render can only happen inside :func:`render`, which installs the budget; a guard that
finds none refuses to run, so no code path renders a tenant template unbounded.

Between two steps a template can only do work proportional to values the budget already
admitted (a comparison, a slice, one filter over a bounded value), so a render that hits
its limit stops within milliseconds of it. That is what lets :func:`run_off_loop` run
renders on a small thread pool: a Python thread cannot be killed, but these renders
always end by themselves, soon after their deadline. A process pool would also survive a
render that never ends, but every Infer would pay a round trip to another process for
what normally takes microseconds, and the caps make that unnecessary.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.filters import FILTERS
from jinja2.runtime import Context, LoopContext, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import Cycler, Joiner, Namespace
from jinja2.visitor import NodeTransformer

from services.errors import FailedPrecondition, ResourceExhausted

# ---- limits ------------------------------------------------------------------------
# Legitimate prompt templates place a few variables and maybe loop over a handful of
# items: they use a tiny fraction of these. A hostile one hits one of them in well under
# a second.

MAX_TEMPLATE_CHARS = 32_000
"""Longest template source accepted at CreatePolicy (each of system prompt and user
template)."""
MAX_STEPS = 100_000
"""Loop iterations + calls + operators + filter applications + attribute lookups."""
MAX_CHARS = 1_000_000
"""Characters a render may produce (output and intermediate strings and lists), on top of
``VARIABLE_CHARS_FACTOR`` times the size of the request's own variables: a template that
places a large retrieved context must not be refused for it."""
VARIABLE_CHARS_FACTOR = 4
RENDER_TIME_S = 0.5
"""Wall-clock limit of one render, checked at every step in the rendering thread."""
MAX_INT_BITS = 4096
"""Largest integer arithmetic may produce (``10**10**9`` would take minutes)."""
MAX_ARGUMENT_INT = 100_000
"""Largest integer argument to a filter (``batch(10**9)`` builds a list of that size)."""

# The render pool. A hostile render keeps a thread busy until its deadline; a tenant may
# hold at most TENANT_RENDERS threads, so one hostile tenant leaves half the pool to the
# others (and its own extra requests wait, then fail, in its own queue). A CPU-bound
# render thread also competes for the GIL with the event loop, which is why the pool is
# small rather than large.
POOL_THREADS = 4
TENANT_RENDERS = 2
QUEUE_WAIT_S = 2.0
"""How long a render may wait for a thread of its tenant's share before it fails."""

REASON_LIMIT = "TEMPLATE_LIMIT_EXCEEDED"
REASON_FAILED = "TEMPLATE_RENDER_FAILED"
REASON_BUSY = "TEMPLATE_RENDER_BUSY"


class TemplateLimitExceeded(SecurityError):
    """A render went past one of its limits (steps, characters, time)."""


# ---- the budget --------------------------------------------------------------------


class Budget:
    """What one render may still spend. Lives in a thread-local while the render runs."""

    __slots__ = ("chars", "deadline", "steps")

    def __init__(self, *, steps: int, chars: int, seconds: float) -> None:
        self.steps = steps
        self.chars = chars
        self.deadline = time.monotonic() + seconds

    def step(self, n: int = 1) -> None:
        self.steps -= n
        if self.steps < 0:
            raise TemplateLimitExceeded(
                f"more than {MAX_STEPS} loop iterations, calls or operations"
            )
        if time.monotonic() > self.deadline:
            raise TemplateLimitExceeded(f"rendering took longer than {RENDER_TIME_S} s")

    def afford(self, chars: int) -> None:
        """Refuse before building something of ``chars`` characters that would not fit."""
        if chars > self.chars:
            raise TemplateLimitExceeded("the template produces too much text")

    def charge(self, chars: int) -> None:
        self.afford(chars)
        self.chars -= chars


_local = threading.local()


def _budget() -> Budget:
    budget: Budget | None = getattr(_local, "budget", None)
    if budget is None:
        # Every guarded operation needs a budget: a render outside render() is a bug,
        # and refusing it keeps that bug from becoming an unbounded render.
        raise TemplateLimitExceeded("templates render only through services.templating")
    return budget


def size_of(value: Any, limit: int) -> int:
    """An upper estimate of ``len(str(value))``, counted no further than past ``limit``.

    Strings inside containers count 10 per character (``repr`` may escape one character
    as ``\\U0001f600``); shared references count each time, as ``str`` prints them each
    time."""
    total = 0
    stack: list[tuple[Any, bool]] = [(value, True)]
    while stack and total <= limit:
        item, top = stack.pop()
        if isinstance(item, str):
            total += len(item) if top else 10 * len(item) + 4
        elif isinstance(item, bytes):
            total += 4 * len(item) + 3
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, range):
            # Its repr is short, but a filter that consumes it does work, and builds a
            # list, in proportion to its length.
            total += 8 * len(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend((x, False) for pair in item.items() for x in pair)
        elif isinstance(item, list | tuple | set | frozenset | types.MappingProxyType) or type(
            item
        ).__name__ in ("dict_keys", "dict_values", "dict_items"):
            total += 2 + 2 * len(item)
            stack.extend((x, False) for x in item)
        else:
            # Floats, macros, loops, generators, BoundedNamespace...: short reprs.
            total += 32
    return total


def _charge_value(value: Any) -> Any:
    budget = _budget()
    budget.charge(size_of(value, budget.chars))
    return value


# ---- guarded runtime objects -------------------------------------------------------


class BoundedNamespace(Namespace):
    """``namespace()`` whose text is not its attributes: a namespace is mutable, so a list
    of references to one could grow after it was measured."""

    def __repr__(self) -> str:
        return "<namespace>"


def _guarded_iter(iterable: Any) -> Iterator[Any]:
    """What every ``for`` loop iterates: one step per item."""
    budget = _budget()
    if isinstance(iterable, Undefined):
        iterable = iter(iterable)  # StrictUndefined raises here, as it would in the loop
    for item in iterable:
        budget.step()
        yield item


def _guarded_items(iterator: Iterator[Any]) -> Iterator[Any]:
    """A filter's lazy result (``map``, ``select``, ``batch``...): each item is charged,
    one step and its size, as it is pulled."""
    budget = _budget()
    for item in iterator:
        budget.step()
        budget.charge(size_of(item, budget.chars))
        yield item


def _guarded_output(value: Any) -> str:
    """Every ``{{ ... }}`` and every piece of template text, before it is converted."""
    budget = _budget()
    budget.afford(size_of(value, budget.chars))
    text = str(value)
    budget.charge(len(text))
    return text


def _guarded_concat(*parts: Any) -> str:
    """``a ~ b ~ c``, measured part by part before anything is joined."""
    budget = _budget()
    total = 0
    for part in parts:
        total += size_of(part, budget.chars)
        budget.afford(total)
    text = "".join(str(p) for p in parts)
    budget.charge(len(text))
    return text


# ---- filters -----------------------------------------------------------------------


def _check_int_arguments(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_ARGUMENT_INT:
            raise TemplateLimitExceeded(f"a filter argument above {MAX_ARGUMENT_INT}")


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else size_of(value, MAX_CHARS * 100)


def _pre_center(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    width = args[0] if args else kw.get("width", 80)
    if isinstance(width, int):
        budget.afford(width + _text_len(value))


def _pre_indent(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    width = args[0] if args else kw.get("width", 4)
    prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = value if isinstance(value, str) else ""
    budget.afford(_text_len(value) + prefix * (text.count("\n") + 1))


def _pre_replace(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    old = args[0] if args else kw.get("old", "")
    new = args[1] if len(args) > 1 else kw.get("new", "")
    text = value if isinstance(value, str) else str(value)[: budget.chars + 1]
    hits = text.count(str(old)) if isinstance(old, str) else 0
    budget.afford(len(text) + hits * _text_len(new))


def _pre_join(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    # The value is a list here (the wrapper materializes lazy ones first), so the
    # separator's share is known before anything is joined.
    separator = args[0] if args else kw.get("d", "")
    items = value if isinstance(value, list | tuple | str) else ()
    budget.afford(size_of(list(items), budget.chars) + len(items) * _text_len(separator))


def _pre_sum(budget: Budget, value: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    start = args[1] if len(args) > 1 else kw.get("start", 0)
    # sum() over lists copies quadratically; numbers are what a template sums.
    if not isinstance(start, int | float):
        raise TemplateLimitExceeded("sum() takes numbers only")


Precheck = Callable[[Budget, Any, tuple[Any, ...], dict[str, Any]], None]
# The whitelist: filters whose work and output are at most linear in what the budget
# already admitted, plus prechecks for the ones that multiply. Left out: ``format``
# (printf widths inside the format string), ``wordwrap``, ``striptags`` and ``urlize``
# (regular expressions with super-linear worst cases), ``pprint``, ``xmlattr``,
# ``urlencode`` (not needed in a prompt).
# fmt: off
_LINEAR_FILTERS = (
    "abs", "attr", "batch", "capitalize", "count", "d", "default", "dictsort", "e",
    "escape", "filesizeformat", "first", "float", "forceescape", "groupby", "int",
    "items", "last", "length", "list", "lower", "map", "max", "min", "random", "reject",
    "rejectattr", "reverse", "round", "safe", "select", "selectattr", "slice", "sort",
    "string", "title", "tojson", "trim", "truncate", "unique", "upper", "wordcount",
)
# fmt: on
ALLOWED_FILTERS: dict[str, Precheck | None] = {
    **dict.fromkeys(_LINEAR_FILTERS),
    "center": _pre_center,
    "indent": _pre_indent,
    "replace": _pre_replace,
    "join": _pre_join,
    "sum": _pre_sum,
}


def _guard_filter(name: str, func: Callable[..., Any], precheck: Precheck | None) -> Any:
    # Filters marked pass_context/pass_environment/pass_eval_context get that first;
    # functools.wraps copies the marker, so Jinja still passes it to the wrapper.
    value_at = 1 if hasattr(func, "jinja_pass_arg") else 0

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.step()
        value = args[value_at] if len(args) > value_at else None
        rest = args[value_at + 1 :]
        _check_int_arguments((*rest, *kwargs.values()))
        if (
            name == "join"
            and isinstance(value, Iterable)
            and not isinstance(value, list | tuple | str)
        ):
            # Materialized first, so the precheck knows how many separators it takes
            # (``range(100000)|join(a_long_text)``); the items of a lazy value are
            # charged as they are pulled.
            value = list(value)
            budget.step(len(value))
            args = (*args[:value_at], value, *rest)
        # A filter may only take a value whose text would fit in what is left (``string``
        # or ``tojson`` of a list of many references to one long text is large), and its
        # own work, linear in that value, counts as steps: a loop that filters a large
        # value runs out of steps quickly.
        size = size_of(value, budget.chars)
        budget.afford(size)
        budget.step(size // 1000)
        if precheck is not None:
            precheck(budget, value, rest, kwargs)
        result = func(*args, **kwargs)
        if isinstance(result, Iterator):
            return _guarded_items(result)
        budget.charge(size_of(result, budget.chars))
        return result

    return guarded


# ---- calls -------------------------------------------------------------------------

# str methods that never grow their input (``upper`` may, by at most 3x, and is charged
# after), and the growing ones checked before they run.
_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
    }
)
_STR_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
_HELPER_METHODS = frozenset({"cycle", "changed", "next", "reset"})


def _refuse_call(obj: Any) -> NoReturn:
    name = getattr(obj, "__name__", type(obj).__name__)
    raise SecurityError(f"calling {name!r} is not allowed in a prompt template")


def _precheck_method(budget: Budget, owner: Any, name: str, args: tuple[Any, ...]) -> None:
    if isinstance(owner, str):
        if name in _STR_METHODS:
            return
        if name in _STR_WIDTH_METHODS:
            if args and isinstance(args[0], int):
                budget.afford(args[0] + len(owner))
            return
        if name == "replace":
            _pre_replace(budget, owner, args, {})
            return
        if name == "join":
            items = args[0] if args else ()
            if not isinstance(items, list | tuple | str):
                raise SecurityError("str.join() takes a list here (use the join filter)")
            budget.afford(size_of(list(items), budget.chars) + len(items) * len(owner))
            return
    elif (
        (isinstance(owner, dict) and name in _DICT_METHODS)
        or (isinstance(owner, list | tuple) and name in _SEQUENCE_METHODS)
        or (isinstance(owner, LoopContext | Cycler) and name in _HELPER_METHODS)
    ):
        return
    raise SecurityError(f"calling {type(owner).__name__}.{name}() is not allowed here")


# ---- the AST rewrite ---------------------------------------------------------------


def _call(name: str, args: list[nodes.Node], lineno: int) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name), args, [], None, None, lineno=lineno)


class _Guard(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise TemplateSyntaxError("recursive loops are not allowed", node.lineno)
        self.generic_visit(node)
        node.iter = _call("guarded_iter", [node.iter], node.lineno)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            _call(
                "guarded_output",
                [nodes.Const(child.data, lineno=child.lineno)]
                if isinstance(child, nodes.TemplateData)
                else [child],
                child.lineno,
            )
            for child in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call("guarded_concat", list(node.nodes), node.lineno)

    def _refuse(self, node: nodes.Node) -> NoReturn:
        raise TemplateSyntaxError(
            "extends, include and import are not available in prompt templates", node.lineno
        )

    visit_Extends = visit_Include = visit_Import = visit_FromImport = _refuse


# ---- the environment ---------------------------------------------------------------


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with every loop, call, operator and filter charged to a budget."""

    # Every arithmetic operator goes through call_binop (which also keeps the compiler
    # from constant-folding them at compile time).
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self) -> None:
        # optimized=False: the optimizer evaluates constant sub-expressions (filters
        # included) at compile time, i.e. at CreatePolicy, without any budget.
        super().__init__(undefined=StrictUndefined, autoescape=False, optimized=False)
        self.filters = {
            name: _guard_filter(name, FILTERS[name], precheck)
            for name, precheck in ALLOWED_FILTERS.items()
        }
        self.globals = {
            "range": safe_range,
            "dict": dict,
            "cycler": Cycler,
            "joiner": Joiner,
            "namespace": BoundedNamespace,
        }
        self.guarded_iter = _guarded_iter
        self.guarded_output = _guarded_output
        self.guarded_concat = _guarded_concat
        self._guards: tuple[object, ...] = (_guarded_iter, _guarded_output, _guarded_concat)
        self._constructors: tuple[object, ...] = (
            safe_range,
            dict,
            Cycler,
            Joiner,
            BoundedNamespace,
        )

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = _Guard().visit(super()._parse(source, name, filename))
        assert isinstance(tree, nodes.Template)
        tree.set_environment(self)
        return tree

    def call(
        __self,  # Jinja's own signature: keeps keyword arguments named "self" free
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if any(__obj is guard for guard in __self._guards):
            # They charge for themselves. Inside loops and blocks the compiler adds the
            # scope's variables for the callee's context; guards take no context.
            return __obj(*args)
        budget = _budget()
        budget.step()
        if isinstance(__obj, Undefined):
            pass  # calling it raises UndefinedError, as it should
        elif isinstance(__obj, Macro | Joiner) or any(__obj is c for c in __self._constructors):
            _check_int_arguments(kwargs.values())
        elif isinstance(__obj, types.BuiltinMethodType | types.MethodType):
            _precheck_method(budget, __obj.__self__, __obj.__name__, args)
        else:
            _refuse_call(__obj)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, range):
            return result  # lazy: loops and filters charge for what they take from it
        if isinstance(result, Iterator):
            return _guarded_items(result)
        return _charge_value(result)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.step()
        _check_binop(budget, operator, left, right)
        result = self.binop_table[operator](left, right)
        return _charge_value(result) if isinstance(result, str | list | tuple) else result

    def getattr(self, obj: Any, attribute: str) -> Any:
        _budget().step()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _budget().step()
        return super().getitem(obj, argument)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    sequences = str | list | tuple
    if operator == "*":
        if isinstance(left, sequences) and _is_int(right):
            budget.afford(size_of(left, budget.chars) * max(right, 0))
        elif isinstance(right, sequences) and _is_int(left):
            budget.afford(size_of(right, budget.chars) * max(left, 0))
        elif (
            _is_int(left)
            and _is_int(right)
            and left.bit_length() + right.bit_length() > MAX_INT_BITS
        ):
            raise TemplateLimitExceeded(f"an integer above {MAX_INT_BITS} bits")
    elif operator == "+":
        if isinstance(left, sequences) and isinstance(right, sequences):
            budget.afford(size_of(left, budget.chars) + size_of(right, budget.chars))
    elif operator == "**" and _is_int(left) and _is_int(right) and abs(left) > 1:
        if left.bit_length() * right > MAX_INT_BITS:
            raise TemplateLimitExceeded(f"an integer above {MAX_INT_BITS} bits")
    elif operator == "%" and isinstance(left, str | bytes):
        # printf formatting: the widths live in the format string ('%999999999d').
        raise SecurityError("the % operator on text is not allowed; use ~ or filters")


ENV = BoundedEnvironment()


@functools.lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """Compile in the bounded sandbox (cached: policies are immutable)."""
    return ENV.from_string(source)


def is_static(source: str) -> bool:
    """Whether a template is plain text: under the default delimiters every tag,
    expression and comment starts with '{', so without one it renders to itself and runs
    nothing of its author's."""
    return "{" not in source


_NEWLINE = re.compile(r"\r\n|\r|\n")


def render_static(source: str) -> str:
    """What Jinja renders a static template to, without Jinja: newlines made '\\n' and
    one trailing newline dropped (its lexer's defaults, keep_trailing_newline off).
    Hand-written because Jinja's own path costs a compile-cache lookup, a budget and a
    render per request for text that has nothing to run."""
    lines = _NEWLINE.split(source)
    if lines[-1] == "":
        lines.pop()
    return "\n".join(lines)


def variables_of(source: str) -> frozenset[str]:
    """The variables a template reads (empty when it does not parse)."""
    try:
        return frozenset(meta.find_undeclared_variables(ENV.parse(source)))
    except Exception:  # RecursionError on absurd nesting too: treat as unparseable
        return frozenset()


def problem(source: str, variables: frozenset[str]) -> str | None:
    """Why a template cannot be registered, or None. Static checks only: everything a
    template does at render time is bounded by the budget anyway."""
    if len(source) > MAX_TEMPLATE_CHARS:
        return f"must be at most {MAX_TEMPLATE_CHARS} characters"
    try:
        parsed = ENV.parse(source)
    except TemplateSyntaxError as exc:
        return f"does not compile: {exc.message} (line {exc.lineno})"
    except RecursionError:
        return "does not compile: nested too deeply"
    try:
        unknown = sorted(meta.find_undeclared_variables(parsed) - variables)
    except TemplateError as exc:  # an unknown (or not allowed) filter or test
        return f"does not compile: {exc.message or exc}"
    if unknown:
        names = " and ".join(f"{{{{{v}}}}}" for v in sorted(variables))
        return f"uses undefined variable(s) {', '.join(unknown)}; only {names} are available"
    try:
        compile_template(source)
    except TemplateError as exc:  # an unknown (or not allowed) filter or test
        return f"does not compile: {exc.message or exc}"
    except (RecursionError, MemoryError, SyntaxError):
        return "does not compile: nested too deeply"
    return None


# ---- rendering ---------------------------------------------------------------------


class RenderError(Exception):
    """A render failed; ``limit`` tells a budget overrun from an ordinary error."""

    def __init__(self, message: str, *, limit: bool) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


def render(source: str, variables: Mapping[str, object]) -> str:
    """Render in the calling thread under a fresh budget. Raises RenderError."""
    if is_static(source):
        return render_static(source)
    extra = sum(len(v) for v in variables.values() if isinstance(v, str))
    budget = Budget(
        steps=MAX_STEPS, chars=MAX_CHARS + VARIABLE_CHARS_FACTOR * extra, seconds=RENDER_TIME_S
    )
    previous = getattr(_local, "budget", None)
    _local.budget = budget
    try:
        return str(compile_template(source).render(**variables))
    except TemplateLimitExceeded as err:
        raise RenderError(str(err), limit=True) from None
    except TemplateError as err:
        raise RenderError(str(err)[:500], limit=False) from None
    except (MemoryError, RecursionError) as err:
        raise RenderError(f"{type(err).__name__}", limit=True) from None
    except Exception as err:  # TypeError, ZeroDivisionError...: the template's bug
        raise RenderError(f"{type(err).__name__}: {str(err)[:300]}", limit=False) from None
    finally:
        _local.budget = previous


def domain_error(err: RenderError, what: str) -> FailedPrecondition:
    """The Infer error for a policy template that failed: the policy's fault (it was
    registered), not the caller's."""
    if err.limit:
        return FailedPrecondition(
            f"the policy's {what} exceeded the template limits: {err.message}",
            reason=REASON_LIMIT,
        )
    return FailedPrecondition(
        f"the policy's {what} failed to render: {err.message}", reason=REASON_FAILED
    )


class _RenderPool:
    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._holders: dict[str, int] = {}

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    POOL_THREADS, thread_name_prefix="rlaas-template"
                )
            return self._executor

    async def acquire(self, key: str) -> asyncio.Semaphore:
        """A slot of ``key``'s share (RESOURCE_EXHAUSTED after QUEUE_WAIT_S)."""
        # One semaphore per tenant with renders in flight or waiting, dropped when the
        # last one ends (the dict never holds idle tenants, nor a semaphore of a loop
        # that has closed).
        semaphore = self._slots.setdefault(key, asyncio.Semaphore(TENANT_RENDERS))
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with asyncio.timeout(QUEUE_WAIT_S):
                await semaphore.acquire()
        except TimeoutError:
            self._drop_holder(key)
            raise ResourceExhausted(
                "this tenant's prompt templates are already rendering at capacity",
                reason=REASON_BUSY,
            ) from None
        except BaseException:  # cancelled while waiting
            self._drop_holder(key)
            raise
        return semaphore

    def release(self, key: str, semaphore: asyncio.Semaphore) -> None:
        semaphore.release()
        self._drop_holder(key)

    def _drop_holder(self, key: str) -> None:
        self._holders[key] -= 1
        if not self._holders[key]:
            del self._holders[key], self._slots[key]


_POOL = _RenderPool()


T = TypeVar("T")


async def run_off_loop(key: str, func: Callable[[], T]) -> T:
    """Run ``func`` (which renders through :func:`render`) on the render pool, within
    ``key``'s share of it. The event loop never runs a template."""
    semaphore = await _POOL.acquire(key)
    loop = asyncio.get_running_loop()
    try:
        future = _POOL.executor().submit(func)
    except BaseException:
        _POOL.release(key, semaphore)
        raise
    # The slot is given back when the thread is done, not when the caller stops
    # waiting: a thread cannot be stopped, so a caller that cancels its RPC must not
    # free a slot its render still occupies (or a tenant could hold every thread by
    # cancelling). Every render ends by itself soon after its deadline, so no timeout
    # is needed here.
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(_POOL.release, key, semaphore))
    return await asyncio.wrap_future(future)
