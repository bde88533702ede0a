//! A "replica" that is none is refused when the resolver is built.

use super::*;

#[tokio::test]
async fn a_primary_given_as_a_replica_is_refused() {
    let Some((primary_url, _)) = urls() else {
        return;
    };
    let refused = ConflictResolver::builder(pool(&primary_url, 2).await)
        .replica(pool(&primary_url, 2).await)
        .build_checked()
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ReplicaRefused::NotAReplica { replica: 0 }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("pg_is_in_recovery() is false"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_replica_of_another_cluster_is_refused() {
    let (Some((_, replica_url)), Some(other_primary)) =
        (urls(), common::server_url(Backend::Postgres))
    else {
        return;
    };
    let refused = ConflictResolver::builder(pool(&other_primary, 2).await)
        .replica(pool(&replica_url, 2).await)
        .build_checked()
        .await
        .unwrap_err();
    let ReplicaRefused::OtherCluster {
        replica,
        primary_system_id,
        replica_system_id,
    } = &refused
    else {
        panic!("{refused:?}");
    };
    assert_eq!(*replica, 0);
    assert_ne!(primary_system_id, replica_system_id);
    assert!(
        refused.to_string().contains("another database cluster"),
        "{refused}"
    );
}
