//! A "replica" that is none is refused when the resolver is built: a
//! primary, a replica of another PostgreSQL cluster, a MariaDB replica of
//! another server.

use super::*;

/// What `build_checked` says of `replica` as a replica of `primary`.
async fn refused(primary: &str, replica: &str) -> ReplicaRefused {
    ConflictResolver::builder(pool(primary, 2).await)
        .replica(pool(replica, 2).await)
        .build_checked()
        .await
        .expect_err("refused")
}

#[tokio::test]
async fn a_primary_given_as_a_replica_is_refused() {
    let postgres = urls().map(|(primary, _)| (primary, "pg_is_in_recovery() is false"));
    let mariadb = mariadb_urls().map(|(primary, _)| (primary, "SHOW SLAVE STATUS is empty"));
    for (primary, why) in [postgres, mariadb].into_iter().flatten() {
        let refused = refused(&primary, &primary).await;
        assert!(
            matches!(refused, ReplicaRefused::NotAReplica { replica: 0 }),
            "{refused:?}"
        );
        assert!(refused.to_string().contains(why), "{refused}");
    }
}

#[tokio::test]
async fn a_replica_of_another_cluster_is_refused() {
    let (Some((_, replica_url)), Some(other_primary)) =
        (urls(), common::server_url(Backend::Postgres))
    else {
        return;
    };
    let refused = refused(&other_primary, &replica_url).await;
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

/// The dev MariaDB server as the primary of the pair's replica: same
/// default `server_id` (1) as the pair's primary, another port.
#[tokio::test]
async fn a_mariadb_replica_of_another_server_is_refused() {
    let (Some((_, replica_url)), Some(other_primary)) =
        (mariadb_urls(), common::server_url(Backend::MySql))
    else {
        return;
    };
    let refused = refused(&other_primary, &replica_url).await;
    let ReplicaRefused::OtherPrimary {
        replica,
        primary,
        replicates,
    } = &refused
    else {
        panic!("{refused:?}");
    };
    assert_eq!(*replica, 0);
    assert_ne!(primary, replicates);
    let message = refused.to_string();
    assert!(
        message.contains("replicates another server") && message.contains("CHANGE MASTER TO"),
        "{message}"
    );
}
