//! Shared by the console's tests, its benchmark and its example driver.

#![allow(dead_code)]

pub mod hybrid;
pub mod scenarios;
pub mod stand_in;
