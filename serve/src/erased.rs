//! A value behind `&dyn Erased<T>`: `Send` and `Sync` by the trait's bounds alone, so a future
//! that holds it costs rustc no walk of `T`'s fields (see "Compile time" in lib.rs). Made by a
//! coercion in a function without where-clauses (`fn f(t: &T) -> &dyn Erased<T> { t }`), where
//! `T: Send + Sync` is proved once and cached.

pub trait Erased<T>: Send + Sync {
    fn get(&self) -> &T;
}

// For each type the handlers erase, not for every `T: Send + Sync`: a blanket impl made every
// `.get()` probe it, and the crate took 7 s longer to compile.
macro_rules! erased {
    ($($t:ty),*) => {$(
        impl Erased<$t> for $t {
            fn get(&self) -> &$t {
                self
            }
        }
    )*};
}

erased!(
    datafusion_postgres::Parser,
    crate::queries::Queries,
    crate::queries::Fresh,
    datafusion_postgres::pgwire::api::portal::Portal<crate::shared::Planned>
);
