//! Many lanes under one timer.
