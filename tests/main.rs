//! Integration tests.

mod model_language;
