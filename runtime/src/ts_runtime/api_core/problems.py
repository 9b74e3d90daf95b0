"""Decode a request body into a msgspec Struct, or answer 400 naming every bad field at once.

    payload = decode_struct(NewItem, await request.body())      # NewItem, or ApiError 400

The fast path is msgspec's own decoder (built once per type). msgspec stops at the first problem
and words it for programmers ("Expected `str`, got `int` - at `$.messages[3].text`"), so only
when it fails is the body read again as plain JSON and the struct's fields walked one by one
(`msgspec.structs.fields`): each value is converted alone with `msgspec.convert`, against the
field's own type with its Meta constraints, and every bad one becomes a FieldProblem with its
wire path (`channelId`, `messages[3].text`) and a sentence ("must be a string", "must be at most
200 characters", "is required"). The path is known because the walk builds it: msgspec's error
text is only read for its reason, never for its location.

A field's Meta may carry its own sentence for the failures of the constraints it declares (a Meta
declaring none: for a value of the wrong type):
`Meta(pattern=..., extra={"problem": "must be a slug (lower-case letters, digits and '-')"})`.

Whatever the walk finds, a body the decoder refused is always answered 400 with at least one
problem (msgspec's own reason at `body` when the walk names none, e.g. a duplicated key), and a
body the decoder accepted is returned exactly as the decoder built it.
"""

from __future__ import annotations

import enum
import functools
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec

from .errors import ApiError, FieldProblem, validation_failed

T = TypeVar("T")

# The key of a Meta's `extra` holding the sentence for any failure of that value.
PROBLEM = "problem"

_decoders: dict[Any, msgspec.json.Decoder] = {}
_plain = msgspec.json.Decoder()
_MISSING = object()
_NONE_TYPE = type(None)
_UNIONS = (Union, types.UnionType)
_ARRAYS = (list, tuple, set, frozenset, Sequence)

# The type names in msgspec's "Expected `...`" reasons, as a client reads them.
_KINDS = {
    "str": "a string", "int": "an integer", "float": "a number", "bool": "true or false", "null": "null",
    "object": "an object", "array": "an array", "datetime": "an RFC 3339 date-time", "date": "an ISO date",
    "time": "an ISO time", "duration": "an ISO 8601 duration", "uuid": "a UUID", "decimal": "a decimal number",
    "bytes": "base64 text",
}
_UNITS = {"str": "characters", "array": "items", "object": "entries", "bytes": "bytes"}


def decode_struct(struct_type: type[T], body: bytes | str, *, at: str = "") -> T:
    """`body` (JSON) as `struct_type`, or ApiError 400 "Validation failed" naming every bad field.

    `at` prefixes each field's path (an element of a batch: `messages[3]`)."""
    try:
        return _decoder(struct_type).decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:  # ValidationError is a DecodeError
        failure: Exception = exc
    raise validation_failed(_explain_body(struct_type, body, failure, at)) from None


def convert_struct(struct_type: type[T], obj: Any, *, at: str = "") -> T:
    """An already decoded JSON value (a batch item, a query dict) as `struct_type`, or ApiError 400."""
    try:
        return msgspec.convert(obj, struct_type)
    except (msgspec.ValidationError, RecursionError) as exc:
        failure: Exception = exc
    raise validation_failed(_explain_value(struct_type, obj, failure, at)) from None


def problems_in(struct_type: Any, obj: Any, *, at: str = "") -> list[FieldProblem]:
    """Every problem of a decoded JSON value against `struct_type` (empty: it converts)."""
    try:
        msgspec.convert(obj, struct_type)
    except (msgspec.ValidationError, RecursionError) as exc:
        return _explain_value(struct_type, obj, exc, at)
    return []


def _decoder(struct_type: Any) -> msgspec.json.Decoder:
    decoder = _decoders.get(struct_type)
    if decoder is None:
        # Two threads may build the same decoder once each: harmless, and no lock on the fast path.
        decoder = _decoders[struct_type] = msgspec.json.Decoder(struct_type)
    return decoder


def _explain_body(struct_type: Any, body: bytes | str, failure: Exception, at: str) -> list[FieldProblem]:
    where = at or "body"
    try:
        value = _plain.decode(body)
    except msgspec.DecodeError as exc:  # malformed, or a number out of range (1e400)
        return [FieldProblem(where, f"is not valid JSON ({json_syntax_reason(body, exc)})")]
    except RecursionError:  # msgspec gives up past ~1,000 levels
        return [FieldProblem(where, "is nested too deeply")]
    return _explain_value(struct_type, value, failure, at)


def json_syntax_reason(body: bytes | str, error: msgspec.DecodeError) -> str:
    """Why `body` is not JSON, in words that point at the fix: msgspec's own, except for a lone
    surrogate escape, which msgspec words "Input data was truncated" (sending the client astray)."""
    surrogate = _lone_surrogate(body)
    if surrogate:
        return (f"a lone UTF-16 surrogate escape {surrogate}: escape a character outside the BMP "
                "as a high+low pair, or send it as UTF-8")
    return str(error)


# A run of backslashes then `u` and a surrogate code unit; the lookbehind makes each run start one
# match attempt only, so the scan stays linear even on a body of backslashes.
_SURROGATE_ESCAPE = re.compile(rb"(?<!\\)(\\+)u([dD][89a-fA-F][0-9a-fA-F]{2})")


def _lone_surrogate(body: bytes | str) -> str | None:
    """The first `\\uD800`..`\\uDFFF` escape that is not half of a high+low pair, if any (an escape only:
    an odd run of backslashes)."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    expect_low_at = -1  # where the low half of the last high surrogate must start
    for match in _SURROGATE_ESCAPE.finditer(data):
        if len(match.group(1)) % 2 == 0:
            continue  # `\\ud800` is an escaped backslash, then the letters "ud800"
        unit = int(match.group(2), 16)
        escape_at = match.end(1) - 1
        if expect_low_at >= 0:  # the last escape was a high half
            if escape_at == expect_low_at and unit >= 0xDC00:
                expect_low_at = -1
                continue
            return _escape_text(data, expect_low_at - 6)
        if unit >= 0xDC00:  # a low half with no high before it
            return _escape_text(data, escape_at)
        expect_low_at = match.end()  # a high half: its low must follow at once
    return _escape_text(data, expect_low_at - 6) if expect_low_at >= 0 else None


def _escape_text(data: bytes, at: int) -> str:
    return data[at:at + 6].decode("ascii", "replace") + f" at byte {at}"


def _explain_value(struct_type: Any, value: Any, failure: Exception, at: str) -> list[FieldProblem]:
    where = at or "body"
    if isinstance(failure, RecursionError):
        return [FieldProblem(where, "is nested too deeply")]
    if _wants_object(struct_type) and not isinstance(value, dict):
        return [FieldProblem(where, "must be a JSON object")]
    problems: list[FieldProblem] = []
    try:
        _walk(struct_type, value, at, problems)
    except RecursionError:
        return [FieldProblem(where, "is nested too deeply")]
    # The walk judges each value alone; what only the whole can break (a key sent twice, a
    # __post_init__ rule) is still named, with msgspec's own reason.
    return problems or [FieldProblem(where, _sentence(failure, struct_type, (), value, whole=True))]


def _walk(tp: Any, value: Any, where: str, problems: list[FieldProblem]) -> None:
    base, metas = _unwrap(tp)
    if base is Any or base is msgspec.Raw:
        return
    if value is not None:
        if _is_struct(base) and isinstance(value, dict) and not base.__struct_config__.array_like:
            _walk_struct(base, value, where, problems)
            return
        if get_origin(base) in _UNIONS:
            _walk_union(tp, base, value, where, problems)
            return
        container = get_origin(base) or base
        if container in _ARRAYS and isinstance(value, list):
            _walk_array(tp, base, metas, value, where, problems)
            return
        if container is dict and isinstance(value, dict):
            _walk_dict(tp, base, metas, value, where, problems)
            return
    _leaf(tp, value, where, problems)


def _walk_struct(struct_type: Any, value: dict, where: str, problems: list[FieldProblem]) -> None:
    config = struct_type.__struct_config__
    tag_field = config.tag_field
    known = {tag_field}
    if tag_field is not None and tag_field in value and not _same(value[tag_field], config.tag):
        problems.append(FieldProblem(_key(where, tag_field), f"must be {msgspec.json.encode(config.tag).decode()}"))
    before = len(problems)
    for field in fields_of(struct_type):
        name = field.encode_name
        known.add(name)
        if name not in value:
            if field.required:
                problems.append(FieldProblem(_key(where, name), "is required"))
            continue
        _walk(field.type, value[name], _key(where, name), problems)
    if config.forbid_unknown_fields:
        problems.extend(FieldProblem(_key(where, key), "is not a known field") for key in value if key not in known)
    if len(problems) == before and hasattr(struct_type, "__post_init__"):
        # Each field is fine: a rule across fields may still refuse the whole.
        _leaf(struct_type, value, where, problems)


@functools.cache
def fields_of(struct_type: Any) -> tuple[msgspec.structs.FieldInfo, ...]:
    """msgspec.structs.fields, once per type (it resolves the annotations on every call)."""
    return msgspec.structs.fields(struct_type)


def _walk_union(tp: Any, base: Any, value: Any, where: str, problems: list[FieldProblem]) -> None:
    others = [m for m in get_args(base) if m not in (_NONE_TYPE, msgspec.UnsetType)]
    if len(others) == 1:
        # `X | None` holding something else than null: judged as an X (its own sentences apply).
        _walk(others[0], value, where, problems)
        return
    members = [_unwrap(m)[0] for m in get_args(base)]
    if isinstance(value, dict):
        objects = [m for m in members if (_is_struct(m) and not m.__struct_config__.array_like)
                   or (get_origin(m) or m) is dict]
        tagged = [m for m in objects if _is_struct(m) and m.__struct_config__.tag_field is not None]
        if len(tagged) > 1:
            _walk_tagged(tagged, value, where, problems)
            return
        if len(objects) == 1:
            _walk(get_args(base)[members.index(objects[0])], value, where, problems)
            return
    elif isinstance(value, list):
        arrays = [m for m in members if (get_origin(m) or m) in _ARRAYS
                  or (_is_struct(m) and m.__struct_config__.array_like)]
        if len(arrays) == 1:
            _walk(get_args(base)[members.index(arrays[0])], value, where, problems)
            return
    _leaf(tp, value, where, problems)


def _walk_tagged(tagged: list[Any], value: dict, where: str, problems: list[FieldProblem]) -> None:
    """A union of tagged structs: the tag picks the struct, whose fields are then walked."""
    tag_field = tagged[0].__struct_config__.tag_field
    choices = ", ".join(str(m.__struct_config__.tag) for m in tagged)
    tag = value.get(tag_field, _MISSING)
    if tag is _MISSING:
        problems.append(FieldProblem(_key(where, tag_field), f"is required (one of {choices})"))
        return
    for member in tagged:
        if _same(tag, member.__struct_config__.tag):
            _walk_struct(member, value, where, problems)
            return
    problems.append(FieldProblem(_key(where, tag_field), f"must be one of {choices}"))


def _walk_array(tp: Any, base: Any, metas: Sequence[msgspec.Meta], value: list, where: str,
                problems: list[FieldProblem]) -> None:
    args = get_args(base)
    if (get_origin(base) or base) is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(args) != len(value):  # a fixed-length tuple of the wrong length
            _leaf(tp, value, where, problems)
            return
        items = list(args)
    else:
        items = [args[0] if args else Any] * len(value)
    if metas:  # the array's own constraints (length), whatever its items hold
        _leaf(_constrained(list, metas), value, where, problems)
    for index, (item_type, item) in enumerate(zip(items, value)):
        _walk(item_type, item, f"{where}[{index}]", problems)


def _walk_dict(tp: Any, base: Any, metas: Sequence[msgspec.Meta], value: dict, where: str,
               problems: list[FieldProblem]) -> None:
    key_type, value_type = get_args(base) or (Any, Any)
    if metas:
        _leaf(_constrained(dict, metas), value, where, problems)
    for key, item in value.items():
        if _unwrap(key_type)[0] not in (str, Any):
            # JSON keys are strings: judged as the JSON decoder would (`"1"` is a fine int key).
            try:
                msgspec.json.decode(msgspec.json.encode({key: None}), type=dict[key_type, Any])
            except msgspec.ValidationError as exc:
                problems.append(FieldProblem(_key(where, key), f"is not an allowed key ({_reason(exc)})"))
                continue
        elif key_type is not str:
            _leaf(key_type, key, _key(where, key), problems)
        _walk(value_type, item, _key(where, key), problems)


@functools.lru_cache(maxsize=1024)
def _constrained(container: type, metas: tuple[msgspec.Meta, ...]) -> Any:
    """An array's or an object's own constraints, whatever its items hold."""
    items = list[Any] if container is list else dict[Any, Any]
    return Annotated[(items, *metas)]


def _leaf(tp: Any, value: Any, where: str, problems: list[FieldProblem]) -> None:
    try:
        msgspec.convert(value, tp)
    except msgspec.ValidationError as exc:
        base, metas = _unwrap(tp)
        problems.append(FieldProblem(where or "body", _sentence(exc, base, metas, value)))


def _sentence(error: Exception, base: Any, metas: Sequence[msgspec.Meta], value: Any, *, whole: bool = False) -> str:
    """msgspec's reason as a sentence about one value (the field's name comes before it)."""
    reason = _reason(error) if not whole else str(error)
    if whole:
        return f"is invalid: {reason}"
    if value is None:
        return "must not be null"
    worded = _worded(reason, metas)
    if worded is not None:
        return worded
    choices = _choices(base)
    if choices:
        return f"must be one of {', '.join(str(c) for c in choices)}"
    if not reason.startswith("Expected `"):
        if reason.startswith("Invalid "):
            return f"must be a valid {reason.removeprefix('Invalid ')}"
        return f"is invalid: {reason}"
    kind, _, rest = reason.removeprefix("Expected `").partition("`")
    rest = rest.strip()
    if rest.startswith(", got `"):
        return "must be " + " or ".join(_KINDS.get(k, f"`{k}`") for k in kind.split(" | "))
    bounds = _bounds(metas)
    if rest.startswith("of length "):
        unit = _UNITS.get(kind, "items")
        low, high = bounds.get("min_length"), bounds.get("max_length")
        if low is not None and high is not None:
            verb = "be" if kind == "str" else "have"
            return f"must {verb} {low} to {high} {unit}" if low != high else f"must {verb} exactly {low} {unit}"
        operator, _, number = rest.removeprefix("of length ").partition(" ")
        if operator == ">=" and number == "1" and kind == "str":
            return "must not be empty"
        verb = "be" if kind == "str" else "have"
        return f"must {verb} {'at least' if operator == '>=' else 'at most'} {number} {unit}"
    if rest.startswith("matching regex "):
        return f"must match the pattern {rest.removeprefix('matching regex ')}"
    multiple = "that's a multiple of "
    if rest.startswith(multiple):
        return f"must be a multiple of {rest.removeprefix(multiple)}"
    if rest.startswith(("with a timezone", "without a timezone")):
        return "must include a time zone" if rest.startswith("with ") else "must not include a time zone"
    operator, _, number = rest.partition(" ")
    if operator in ("<", "<=", ">", ">="):
        low = bounds.get("ge", bounds.get("gt"))
        high = bounds.get("le", bounds.get("lt"))
        if low is not None and high is not None and "gt" not in bounds and "lt" not in bounds:
            return f"must be {_KINDS.get(kind, 'a number')} between {low} and {high}"
        words = {"<": "less than", "<=": "at most", ">": "greater than", ">=": "at least"}[operator]
        return f"must be {words} {number}"
    return f"is invalid: {reason}"


# Which Meta attributes each kind of failure comes from (the Meta whose sentence words it).
_CONSTRAINTS = {
    "length": ("min_length", "max_length"),
    "pattern": ("pattern",),
    "range": ("ge", "gt", "le", "lt", "multiple_of"),
    "tz": ("tz",),
}
_ALL_CONSTRAINTS = tuple(name for names in _CONSTRAINTS.values() for name in names)


def _worded(reason: str, metas: Sequence[msgspec.Meta]) -> str | None:
    """The sentence a Meta gives (`extra={"problem": ...}`) for this failure, if any.

    A Meta words the failures of the constraints it declares; one declaring none words the rest
    (a value of the wrong type), so `Annotated[list[Tag], Meta(extra=...), Meta(max_length=50,
    extra=...)]` can say "must be a list of strings" and "must have at most 50 tags"."""
    rest = reason.removeprefix("Expected `").partition("`")[2].strip() if reason.startswith("Expected `") else ""
    if rest.startswith("of length "):
        owners = _CONSTRAINTS["length"]
    elif rest.startswith("matching regex "):
        owners = _CONSTRAINTS["pattern"]
    elif rest.startswith(("that's a multiple", "<", ">")):
        owners = _CONSTRAINTS["range"]
    elif rest.startswith(("with a timezone", "without a timezone")):
        owners = _CONSTRAINTS["tz"]
    else:
        owners = ()
    for meta in metas:
        if not (meta.extra and PROBLEM in meta.extra):
            continue
        declared = [name for name in _ALL_CONSTRAINTS if getattr(meta, name) is not None]
        if (owners and any(name in declared for name in owners)) or (not owners and not declared):
            return str(meta.extra[PROBLEM])
    return None


def _reason(error: Exception) -> str:
    # A leaf is converted alone, so its reason carries no location; a container's own
    # constraint neither. Anything after " - at " would name msgspec's root, not the field.
    return str(error).partition(" - at `")[0]


def _bounds(metas: Sequence[msgspec.Meta]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for meta in metas:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if getattr(meta, name) is not None:
                found[name] = getattr(meta, name)
    return found


def _choices(base: Any) -> list[Any]:
    """The values a Literal, an Enum, or a union of them allows (empty for any other type)."""
    if get_origin(base) is Literal:
        return [c for c in get_args(base) if c is not None]
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return [member.value for member in base]
    if get_origin(base) in _UNIONS:
        members = [_unwrap(m)[0] for m in get_args(base) if m is not _NONE_TYPE]
        if members and all(_choices(m) for m in members):
            return [c for m in members for c in _choices(m)]
    return []


def _unwrap(tp: Any) -> tuple[Any, tuple[msgspec.Meta, ...]]:
    """A type without its Annotated wrappers, and their msgspec Meta constraints."""
    try:
        return _unwrap_cached(tp)
    except TypeError:  # an unhashable annotation: unwrapped each time
        return _unwrap_cached.__wrapped__(tp)


@functools.lru_cache(maxsize=4096)
def _unwrap_cached(tp: Any) -> tuple[Any, tuple[msgspec.Meta, ...]]:
    metas: tuple[msgspec.Meta, ...] = ()
    while True:
        if get_origin(tp) is Annotated:
            tp, *extra = get_args(tp)
            metas = tuple(m for m in extra if isinstance(m, msgspec.Meta)) + metas
        elif hasattr(tp, "__supertype__"):  # typing.NewType
            tp = tp.__supertype__
        else:
            return tp, metas


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _wants_object(tp: Any) -> bool:
    base = _unwrap(tp)[0]
    if _is_struct(base):
        return not base.__struct_config__.array_like
    if get_origin(base) in _UNIONS:
        members = [_unwrap(m)[0] for m in get_args(base)]
        return bool(members) and all(_is_struct(m) and not m.__struct_config__.array_like for m in members)
    return False


def _same(sent: Any, tag: Any) -> bool:
    # `True == 1` in Python, not on the wire.
    return type(sent) is type(tag) and sent == tag


def _key(where: str, name: Any) -> str:
    return f"{where}.{name}" if where else str(name)


__all__ = ["PROBLEM", "ApiError", "convert_struct", "decode_struct", "fields_of", "problems_in"]
