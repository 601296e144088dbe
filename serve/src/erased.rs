//! A value behind `&dyn Erased<T>`: `Send` and `Sync` by the trait's bounds alone, so a future
//! that holds it costs rustc no walk of `T`'s fields (see "Compile time" in lib.rs). Made by a
//! coercion in a function without where-clauses (`fn f(t: &T) -> &dyn Erased<T> { t }`), where
//! `T: Send + Sync` is proved once and cached.

pub trait Erased<T>: Send + Sync {
    fn get(&self) -> &T;
}

impl<T: Send + Sync> Erased<T> for T {
    fn get(&self) -> &T {
        self
    }
}
