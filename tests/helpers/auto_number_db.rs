//! An AutoNumber enum as a sea-orm entity field: stored as an integer column,
//! loaded back, filtered on, NULL for `Option`, and a stored number that is no
//! variant's is a typed error. Runs on SQLite and on every server the test
//! command started (PostgreSQL, MariaDB).

#![allow(missing_docs, unreachable_pub)] // the entity module must be `pub` for sea-orm's derives

use crate::common;
use crate::for_each_backend;
use conflictkit::AutoNumber;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect, Schema, Statement};

#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending = 1,
    Broadcast,
    Confirmed,
    Failed,
}

#[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
#[auto_number(repr = i16)]
pub enum Priority {
    Low = 0,
    Normal,
    High,
}

pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ck_auto_number_job")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub state: super::State,
        pub priority: super::Priority,
        pub previous: Option<super::State>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

async fn create_table(tdb: &common::TestDb) {
    let schema = Schema::new(tdb.db_backend());
    tdb.db
        .execute(&schema.create_table_from_entity(job::Entity))
        .await
        .expect("create table");
}

#[tokio::test]
async fn entity_round_trip_through_the_database() {
    let mut ran = Vec::new();
    for_each_backend!("auto_number_round_trip", 2, |tdb| {
        create_table(&tdb).await;
        let priorities = [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Normal,
        ];
        let mut expected = Vec::new();
        for (i, state) in State::all().enumerate() {
            let model = job::Model {
                id: i32::try_from(i).unwrap() + 1,
                state,
                priority: priorities[i],
                previous: State::from_value(state.value() - 1),
            };
            job::ActiveModel {
                id: Set(model.id),
                state: Set(model.state),
                priority: Set(model.priority),
                previous: Set(model.previous),
            }
            .insert(&tdb.db)
            .await
            .expect("insert");
            expected.push(model);
        }

        let loaded = job::Entity::find()
            .order_by_asc(job::Column::Id)
            .all(&tdb.db)
            .await
            .unwrap();
        assert_eq!(loaded, expected, "{:?}", tdb.backend);

        // The column holds the number, not the name or the Rust discriminant.
        let raw: Vec<(i32, i32, i16, Option<i32>)> = job::Entity::find()
            .select_only()
            .columns([
                job::Column::Id,
                job::Column::State,
                job::Column::Priority,
                job::Column::Previous,
            ])
            .order_by_asc(job::Column::Id)
            .into_tuple()
            .all(&tdb.db)
            .await
            .unwrap();
        assert_eq!(
            raw,
            [
                (1, 1, 0, None),
                (2, 2, 1, Some(1)),
                (3, 3, 2, Some(2)),
                (4, 4, 1, Some(3))
            ]
        );

        // Filters bind the enum as its number.
        let confirmed = job::Entity::find()
            .filter(job::Column::State.eq(State::Confirmed))
            .one(&tdb.db)
            .await
            .unwrap()
            .expect("one confirmed job");
        assert_eq!(confirmed.id, 3);
        let high_or_pending = job::Entity::find()
            .filter(
                Condition::any()
                    .add(job::Column::State.eq(State::Pending))
                    .add(job::Column::Priority.eq(Priority::High)),
            )
            .order_by_asc(job::Column::Id)
            .all(&tdb.db)
            .await
            .unwrap();
        assert_eq!(
            high_or_pending.iter().map(|m| m.id).collect::<Vec<_>>(),
            [1, 3]
        );

        // Updating through the active model stores the new number.
        let mut active: job::ActiveModel = confirmed.into();
        active.state = Set(State::Failed);
        active.previous = Set(None);
        let updated = active.update(&tdb.db).await.unwrap();
        assert_eq!(updated.state, State::Failed);
        let reloaded = job::Entity::find_by_id(3)
            .one(&tdb.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((reloaded.state, reloaded.previous), (State::Failed, None));

        // A number no variant has is a typed error naming the enum and the value.
        let backend = tdb.db_backend();
        tdb.db
            .execute_raw(Statement::from_string(
                backend,
                "UPDATE ck_auto_number_job SET state = 99 WHERE id = 2",
            ))
            .await
            .unwrap();
        let err = job::Entity::find_by_id(2).one(&tdb.db).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("no variant of `State` has the value 99; use one of 1..=4"),
            "{:?}: {message}",
            tdb.backend
        );
        ran.push(tdb.backend);
    });
    assert!(ran.contains(&common::Backend::Sqlite));
}

#[test]
fn column_types_follow_the_repr() {
    use sea_orm::sea_query::{ColumnType, ValueType};
    assert_eq!(<State as ValueType>::column_type(), ColumnType::Integer);
    assert_eq!(
        <Priority as ValueType>::column_type(),
        ColumnType::SmallInteger
    );
    assert_eq!(<State as ValueType>::type_name(), "State");
    assert_eq!(
        sea_orm::Value::from(State::Broadcast),
        sea_orm::Value::Int(Some(2))
    );
    assert_eq!(
        sea_orm::Value::from(Priority::High),
        sea_orm::Value::SmallInt(Some(2))
    );
    assert_eq!(
        <State as ValueType>::try_from(sea_orm::Value::Int(Some(4))).ok(),
        Some(State::Failed)
    );
    assert!(<State as ValueType>::try_from(sea_orm::Value::Int(Some(5))).is_err());
    assert!(<State as ValueType>::try_from(sea_orm::Value::Int(None)).is_err());
    assert_eq!(
        <State as sea_orm::sea_query::Nullable>::null(),
        sea_orm::Value::Int(None)
    );
    assert_eq!(
        <State as sea_orm::TryFromU64>::try_from_u64(3).unwrap(),
        State::Confirmed
    );
    let err = <State as sea_orm::TryFromU64>::try_from_u64(u64::MAX).unwrap_err();
    assert!(err.to_string().contains("`u64` into `State`"), "{err}");
}
