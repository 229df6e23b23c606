"""Column types of the kiosk application."""
import json

from sqlalchemy import types
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.types import CHAR, String, TypeDecorator


class JSONDict(TypeDecorator):
    """A dict kept as JSON text."""

    impl = types.TEXT
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(value)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


class JSONList(JSONDict):
    """A list kept as JSON text."""


class ShortText(TypeDecorator):
    impl = String
    cache_ok = True


class Code(TypeDecorator):
    """An upper-case code; the length goes to the String."""

    impl = String
    cache_ok = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

    def process_bind_param(self, value, dialect):
        return value.upper() if value else value


class Tags(TypeDecorator):
    impl = types.ARRAY(types.Text)
    cache_ok = True


class GUID(TypeDecorator):
    """PostgreSQL's UUID type, CHAR(32) elsewhere."""

    impl = CHAR
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(UUID())
        else:
            return dialect.type_descriptor(CHAR(32))


SERIAL_LENGTH = 40
