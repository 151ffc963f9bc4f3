"""Option coercion without pydantic, for typer's plain parameter types (a measured seam)."""

from pathlib import Path
from typing import Any, get_args, get_origin

_FLAGS = {"1": True, "true": True, "t": True, "yes": True, "y": True, "on": True,
          "0": False, "false": False, "f": False, "no": False, "n": False, "off": False}


def _element(annotation: Any) -> Any:
    origin: Any = get_origin(annotation)
    return get_args(annotation)[0] if origin is list else annotation


def _simple(descriptor: Any) -> bool:
    """A parameter `_plain_value` can coerce exactly as typer would."""
    from enum import Enum

    pi, kind = descriptor.parameter_info, _element(descriptor.annotation)
    if descriptor.file_annotation is not None or pi.parser is not None or pi.clamp \
            or pi.max is not None or pi.exists or pi.resolve_path or pi.allow_dash \
            or pi.path_type is not None or getattr(pi, "click_type", None) is not None:
        return False
    return kind in (str, int, float, Path, bool) or (
        isinstance(kind, type) and issubclass(kind, Enum) and pi.case_sensitive)


def _plain_value(kind: Any, value: Any, low: float | None) -> Any:
    """`value` as `kind`; ValueError (with the reason) when it is not one."""
    from enum import Enum

    if isinstance(value, bytes):
        value = value.decode()
    try:
        if isinstance(value, kind):
            out = value
        elif kind is bool:
            out = _FLAGS[str(value).strip().lower()]
        else:
            out = kind(value)  # str, int, float, Path, or an Enum by value
    except (TypeError, ValueError, KeyError):
        choices = f" (one of {', '.join(str(c.value) for c in kind)})" \
            if issubclass(kind, Enum) else ""
        raise ValueError(f"{value!r} is not a valid {kind.__name__}{choices}.") from None
    if low is not None and out < low:
        raise ValueError(f"{out} is smaller than the minimum {low}.")
    return out


def plain_params() -> None:
    """Coerce netops' plain option types without pydantic.

    Typer 0.2x builds a pydantic `TypeAdapter` for every parameter of the command it runs, and
    importing pydantic for that costs ~90 ms on every invocation (a third of a 10-node run).
    netops' parameters are plain (str, int with a minimum, float, bool, Path, a StrEnum, lists
    of those), so they are coerced here; anything else, and any typer without this seam, keeps
    typer's own path.
    """
    try:
        import typer.core as core
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except (ImportError, AttributeError):
        return
    original = getattr(core, "build_runtime_param", None)
    if original is None or getattr(original, "_netops", False):
        return

    class Plain(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind, low = _element(self.annotation), self.parameter_info.min
            try:
                if _element(self.annotation) is not self.annotation:  # list[...]
                    return [_plain_value(kind, v, low) for v in value]
                return _plain_value(kind, value, low)
            except ValueError as e:
                raise BadParameter(str(e), ctx=ctx, param=param) from None

    def build(descriptor: Any) -> Any:
        if _simple(descriptor):
            return Plain(parameter_info=descriptor.parameter_info,
                         annotation=descriptor.annotation)
        return original(descriptor)

    build._netops = True  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build)  # noqa: B010  (typer's seam, not exported)


