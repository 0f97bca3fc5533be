"""Frozen models: the platform model's base class, validated by pydantic from the classes' annotations.

A frozen model is declared like a pydantic model (annotated fields, defaults, ``Annotated`` constraints and
validators, nested frozen models, a discriminated union) and validated by the same pydantic-core validator with
the same errors. What it leaves out is what ``ralf plan`` does not use and paid for at every start-up:
pydantic's machinery per class and per field (a ``FieldInfo`` each, decorators, signatures, a mock validator
each). A frozen model's class is a plain class; its validator is made from its annotations when it is first
needed, by pydantic's own schema generation (``TypeAdapter``). For the platform's 29 classes that is ~26 M
instructions instead of ~71 M (``bench/bench_startup.py``); ``tests/foundation/test_frozen.py`` holds them
to the ``BaseModel`` pydantic makes of the same annotations.

Unknown keys are errors (``extra="forbid"``), ``.inf``/``.nan`` are refused, and instances are immutable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast, dataclass_transform, get_origin

from pydantic.fields import FieldInfo

T = TypeVar("T")

REQUIRED: Any = object()  # the "default" of a field that has none


class _Factory:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn


def default_factory(fn: Callable[[], T]) -> T:
    """A field's default made by calling ``fn`` for each instance (pydantic's ``Field(default_factory=fn)``)."""
    return cast(T, _Factory(fn))


@dataclass_transform(kw_only_default=True, frozen_default=True)  # type checkers see each class's __init__
class Frozen:
    """Base of the platform model's classes; see the module's docstring."""

    # what pydantic-core's model validator sets on each instance, as on a pydantic BaseModel
    __slots__ = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")

    # name -> (annotation, default or REQUIRED, default factory or None), the bases' first
    __frozen_fields__: ClassVar[dict[str, tuple[Any, Any, Any]]] = {}
    __frozen_validator__: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = dict(cls.__frozen_fields__)
        namespace = cls.__dict__
        for name, annotation in namespace.get("__annotations__", {}).items():
            if name.startswith("_") or get_origin(annotation) is ClassVar:
                continue
            if isinstance(annotation, str):
                raise TypeError(f"{cls.__name__}.{name}: a frozen model's annotations must be evaluated (its module "
                                "cannot use `from __future__ import annotations`)")
            default = namespace.get(name, REQUIRED)
            if isinstance(default, FieldInfo):
                raise TypeError(f"{cls.__name__}.{name}: write constraints in the annotation, e.g. "
                                "Annotated[int, Ge(1)] = 5, not = Field(5, ge=1)")
            if isinstance(default, _Factory):
                fields[name] = (annotation, REQUIRED, default.fn)
                delattr(cls, name)  # no shared default object on the class
            else:
                fields[name] = (annotation, default, None)
        cls.__frozen_fields__ = fields
        cls.__frozen_validator__ = None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema as cs

        fields = {}
        for name, (annotation, default, factory) in cls.__frozen_fields__.items():
            schema = handler.generate_schema(annotation)
            if factory is not None:
                schema = cs.with_default_schema(schema, default_factory=factory)
            elif default is not REQUIRED:
                schema = cs.with_default_schema(schema, default=default)
            fields[name] = cs.model_field(schema)
        config = cs.CoreConfig(title=cls.__name__, extra_fields_behavior="forbid", allow_inf_nan=False)
        return cs.model_schema(
            cls,
            cs.model_fields_schema(fields, model_name=cls.__name__, extra_behavior="forbid"),
            frozen=True,
            config=config,
            ref=f"{cls.__module__}.{cls.__qualname__}:{id(cls)}",
        )

    def __init__(self, **data: Any) -> None:
        """An instance from keyword arguments, validated; raises pydantic's ``ValidationError``."""
        type(self)._validator().validate_python(data, self_instance=self)

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        """A validated instance from plain data (maps, lists, scalars); raises pydantic's ``ValidationError``."""
        return cls._validator().validate_python(data)

    @classmethod
    def _validator(cls) -> Any:
        validator = cls.__dict__.get("__frozen_validator__")
        if validator is None:
            from pydantic import TypeAdapter

            validator = cls.__frozen_validator__ = TypeAdapter(cls).validator
        return validator

    @classmethod
    def model_construct(cls, **values: Any) -> Any:
        """An instance from values known to be valid, without validating them (defaults filled in)."""
        made = cls.__new__(cls)
        data = {}
        for name, (_, default, factory) in cls.__frozen_fields__.items():
            if name in values:
                data[name] = values[name]
            elif factory is not None:
                data[name] = factory()
            elif default is not REQUIRED:
                data[name] = default
        object.__setattr__(made, "__dict__", data)
        object.__setattr__(made, "__pydantic_fields_set__", set(values))
        object.__setattr__(made, "__pydantic_extra__", None)
        object.__setattr__(made, "__pydantic_private__", None)
        return made

    def model_dump(self) -> dict[str, Any]:
        """The instance as plain data: frozen models become dicts, lists and dicts are copied."""
        return {name: _dump(self.__dict__[name]) for name in self.__frozen_fields__}

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")
        object.__setattr__(self, name, value)  # a private attribute (e.g. the file it was loaded from)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(self.__dict__.get(n) == other.__dict__.get(n) for n in self.__frozen_fields__)

    def __hash__(self) -> int:
        return hash((type(self), *(self.__dict__.get(n) for n in self.__frozen_fields__)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={self.__dict__.get(n)!r}" for n in self.__frozen_fields__)
        return f"{type(self).__name__}({inner})"


def _dump(value: Any) -> Any:
    if isinstance(value, Frozen):
        return value.model_dump()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value
