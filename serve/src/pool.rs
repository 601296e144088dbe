//! Memory for queries: one pool for the whole server (`--memory-limit`), and for each query a
//! share of it (`--query-memory-limit`), fair among that query's own operators. A reservation
//! must fit in both, so no number of clients takes the server past its limit and no one query
//! takes every other query's room.

use std::fmt;
use std::sync::Arc;

use datafusion::common::Result as DfResult;
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// One query's pool: its share, taken from the server's pool as it grows.
#[derive(Debug)]
pub struct Share {
    query: FairSpillPool,
    server: Arc<GreedyMemoryPool>,
    limit: usize,
}

impl Share {
    pub fn new(server: Arc<GreedyMemoryPool>, limit: usize) -> Self {
        Share { query: FairSpillPool::new(limit), server, limit }
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a query's share of {} bytes of the server's {}", self.limit, self.server)
    }
}

impl MemoryPool for Share {
    fn name(&self) -> &str {
        "connaudit-serve-query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.query.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.query.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.query.grow(reservation, additional);
        self.server.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.query.shrink(reservation, shrink);
        self.server.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        self.query.try_grow(reservation, additional)?;
        if let Err(e) = self.server.try_grow(reservation, additional) {
            self.query.shrink(reservation, additional);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.query.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::MemoryConsumer;

    #[test]
    fn a_reservation_fits_in_its_share_and_in_the_server() {
        let server = Arc::new(GreedyMemoryPool::new(1000));
        let (a, b): (Arc<dyn MemoryPool>, Arc<dyn MemoryPool>) =
            (Arc::new(Share::new(server.clone(), 600)), Arc::new(Share::new(server.clone(), 600)));
        let ra = MemoryConsumer::new("a").register(&a);
        let rb = MemoryConsumer::new("b").register(&b);
        assert!(ra.try_grow(700).is_err(), "over its share");
        ra.try_grow(600).expect("its share");
        assert!(rb.try_grow(500).is_err(), "over what the server has left");
        assert_eq!(b.reserved(), 0, "a refused reservation leaves nothing behind");
        rb.try_grow(400).expect("the rest of the server");
        drop(ra);
        assert_eq!(server.reserved(), 400);
        rb.try_grow(200).expect("room again");
    }
}
