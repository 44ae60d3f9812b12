//! The storage tests. `conformance` holds for every backend and runs
//! against SQLite and, when `CHORUS_TEST_POSTGRES_URL` names a server (CI
//! sets it), against PostgreSQL; `sqlite_only` is what only the embedded
//! store promises.

mod conformance;
mod conformance_more;
#[cfg(feature = "postgres")]
mod migrate;
#[cfg(feature = "postgres")]
mod replicas;
mod sqlite_only;
mod support;

/// Each conformance test, once per backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::conformance::$name(crate::support::Fixture::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(f) = crate::support::Fixture::postgres().await {
                        crate::conformance::$name(f).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    agents_crud,
    hooks_need_an_agent_and_cascade,
    ingress_lookups_see_every_change,
    secrets_are_sealed_on_disk,
    ingest_dedupes_on_delivery_key,
    concurrent_ingests_all_commit_and_a_failing_op_fails_alone,
    routing_and_delivery_lifecycle_with_leases,
    a_claimed_event_is_what_was_stored,
    a_pack_cut_off_by_a_crash_comes_back_whole,
    a_channel_sends_in_order_behind_a_retry,
    claims_skip_busy_targets_and_one_target_is_claimed_alone,
    routing_rules_live_and_die_with_their_hook,
    idempotent_answers_are_sealed_and_first_wins,
    audited_changes_record_in_their_own_transaction,
    breaker_steps_commit_with_their_attempts,
    windows_collect_their_events_and_close_once,
    tasks_and_questions_follow_their_lives,
    subscriptions_hold_rotate_recover_and_go,
    tokens_and_the_audit_log_page_and_revoke,
    the_event_log_filters_by_status_type_and_time,
    workflows_runs_and_gates_are_decided_once,
    a_degraded_agents_messages_wait_for_a_new_url,
    subject_state_and_cursors_are_kept,
);

/// What only several processes on one PostgreSQL database show.
#[cfg(feature = "postgres")]
mod postgres_replicas {
    macro_rules! replicas {
        ($($name:ident),* $(,)?) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(f) = crate::support::Fixture::postgres().await {
                        crate::replicas::$name(f).await;
                    }
                }
            )*
        };
    }

    replicas!(
        one_replica_at_a_time_sends_to_a_channel,
        replicas_claiming_at_once_never_share_a_job,
        a_hooks_rate_limit_is_one_budget_across_replicas,
        replicas_hear_of_each_others_work,
        one_replica_routes_at_a_time_and_a_takeover_keeps_the_order,
        a_silent_replicas_claims_are_free_before_they_run_out,
        a_change_on_one_replica_reaches_the_others_cache,
    );
}

/// Moving a SQLite database into PostgreSQL.
#[cfg(feature = "postgres")]
mod postgres_migrate {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_team_moves_whole_with_its_secrets_sealed() {
        crate::migrate::a_team_moves_whole_with_its_secrets_sealed().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_key_or_a_busy_source_is_refused_before_anything_is_written() {
        crate::migrate::a_wrong_key_or_a_busy_source_is_refused_before_anything_is_written().await;
    }
}
