//! The simulator plays both sides of the counter against a running gateway. This
//! library part is the wallet side: a client that signs every request the way a
//! wallet provider must (Standard Webhooks, DESIGN.md §2). The integration tests use
//! it too, so the signing rules are exercised against the real server.

pub mod wallet;
