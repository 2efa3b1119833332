//! A statement's parameters, numbered as they are bound: the one way the
//! batch statements (many `unnest` columns, most of them `bigint[]`) number
//! their `$n`. Each part of a statement binds its own values and writes the
//! placeholders it was given in the same call, so a placeholder can never
//! drift from its value — a shifted hand-computed offset would write wrong
//! money with no type error.

use sqlx::postgres::{PgArguments, Postgres};
use sqlx::{Arguments, Encode, Type};

#[derive(Default)]
pub struct Params {
    arguments: PgArguments,
    count: usize,
    failed: Option<String>,
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Binds `value` and answers its placeholder (`$n`).
    pub fn bind<'q, T>(&mut self, value: T) -> String
    where
        T: Encode<'q, Postgres> + Type<Postgres> + 'q,
    {
        if let Err(error) = self.arguments.add(value) {
            self.failed.get_or_insert_with(|| error.to_string());
        }
        self.count += 1;
        format!("${}", self.count)
    }

    /// The arguments, for `sqlx::query_as_with`.
    pub fn finish(self) -> Result<PgArguments, sqlx::Error> {
        match self.failed {
            Some(error) => Err(sqlx::Error::Encode(error.into())),
            None => Ok(self.arguments),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_binding_order() {
        let mut params = Params::new();
        assert_eq!(params.bind(1_i64), "$1");
        assert_eq!(params.bind(vec![1_i64, 2]), "$2");
        assert_eq!(params.bind("x"), "$3");
        assert!(params.finish().is_ok());
    }
}
