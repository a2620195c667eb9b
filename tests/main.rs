//! Integration tests.

mod store_contract;
