//! `connaudit serve` with real PostgreSQL clients: psql (Debian's postgresql-client), psycopg
//! (PyPI) and pgjdbc (Debian's libpostgresql-jdbc-java), on the warehouse the real transform
//! wrote, with the numbers checked against `connaudit query`.

mod bi_tools;
mod clients;
mod dashboard;
mod fuzz;
mod harness;
mod hostile;
mod jdbc_tools;
mod limits;
mod live;
mod online_panel;
mod rewritten_panels;
mod s3;
mod superset;
mod wire;
mod with_queries;
