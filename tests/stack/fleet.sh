# shellcheck shell=bash
# The fleet: several clusters writing to one distributed store (Thanos), on loopback;
# sourced by tests/stack/stack (`stack fleet ...`). Binaries are shared, state is not.
#
#   cluster-1 (etcd, API server) -- watcher (the test's) --> otelcol-1 --+
#   cluster-2 (etcd, API server) -- watcher (the test's) --> otelcol-2 --+ remote write
#   cluster-3 (etcd, API server) -- watcher (the test's) --> otelcol-3 --+
#                                                                        v
#                                                    receive-router (hashring, RF 2)
#                                                      /          |           \
#                                               receive-1    receive-2    receive-3   (TSDBs)
#                                                      \          |           /
#                                                       query (dedup by receive_replica)
#                                                                 |
#                                        rule (the shipped rules) --> alertmanager --> webhook
#
#   $STACK_DIR/ports.env           the fleet's ports; FLEET_CLUSTERS=N marks a fleet
#   $STACK_DIR/cluster-N/          one `stack up --api-only` each (ports, PKI, kubeconfig)
#   $STACK_DIR/receive-N/          an ingesting receiver's TSDB
#   $STACK_DIR/rule/               the ruler's TSDB (its alerts' `for` state) and rules
#   $STACK_DIR/logs, pids          as a stack's
#
# The watchers are not part of the fleet: tests and benchmarks start their own, one per
# cluster, with `--kubeconfig` and `--otlp-endpoint` from `stack fleet env`.

# The receivers that store (the hashring) and the one that routes: collectors write to the
# router, which writes each series to REPLICATION_FACTOR of the hashring's receivers. In a
# real deployment the router runs as several replicas behind one Service.
FLEET_RECEIVERS=3
FLEET_REPLICATION_FACTOR=2

fleet_components() {
  local i out="webhook alertmanager"
  for i in $(seq 1 "$FLEET_RECEIVERS"); do out+=" receive-$i"; done
  out+=" receive-router query rule"
  for i in $(seq 1 "$FLEET_CLUSTERS"); do out+=" otelcol-$i"; done
  echo "$out"
}

# fleet_command NAME: the command line of a fleet component, into start_component's `cmd`.
fleet_command() {
  local name=$1 thanos i
  thanos=$(bin_path thanos)
  # Thanos waits 2 minutes for in-flight requests on SIGTERM by default; the stack has none
  # worth waiting for.
  local quick=(--http-grace-period=0s --grpc-grace-period=0s --log.level=warn)
  case $name in
    receive-router)
      cmd=("$thanos" receive "${quick[@]}" --http-address "127.0.0.1:$RECEIVE_ROUTER_HTTP_PORT"
        --grpc-address "127.0.0.1:$RECEIVE_ROUTER_GRPC_PORT"
        --remote-write.address "127.0.0.1:$RECEIVE_ROUTER_WRITE_PORT"
        --receive.capnproto-address "127.0.0.1:$RECEIVE_ROUTER_CAPNP_PORT"
        --tsdb.path "$STACK_DIR/receive-router" --label 'receive_router="1"'
        --receive.hashrings-file "$STACK_DIR/hashring.json" --receive.hashrings-algorithm ketama
        --receive.replication-factor "$FLEET_REPLICATION_FACTOR")
      ;;
    receive-[0-9]*)
      i=${name#receive-}
      local http grpc write capnp
      http=RECEIVE_${i}_HTTP_PORT grpc=RECEIVE_${i}_GRPC_PORT write=RECEIVE_${i}_WRITE_PORT capnp=RECEIVE_${i}_CAPNP_PORT
      cmd=("$thanos" receive "${quick[@]}" --http-address "127.0.0.1:${!http}"
        --grpc-address "127.0.0.1:${!grpc}" --remote-write.address "127.0.0.1:${!write}"
        --receive.capnproto-address "127.0.0.1:${!capnp}"
        --receive.local-endpoint "127.0.0.1:${!grpc}"
        --tsdb.path "$STACK_DIR/$name" --label "receive_replica=\"$i\"")
      ;;
    query)
      local endpoints="" sep=""
      for i in $(seq 1 "$FLEET_RECEIVERS"); do
        local grpc=RECEIVE_${i}_GRPC_PORT
        endpoints+="$sep{address: \"127.0.0.1:${!grpc}\"}"
        sep=", "
      done
      cmd=("$thanos" query "${quick[@]}" --http-address "127.0.0.1:$QUERY_HTTP_PORT"
        --grpc-address "127.0.0.1:$QUERY_GRPC_PORT" --endpoint.sd-config "endpoints: [$endpoints]"
        --query.replica-label receive_replica
        # Receivers store the same samples with the same timestamps: merge the copies sample
        # by sample. The default (penalty) drops the samples of a copy it switches to for
        # about two intervals: it made a 6 s hole in a 2 s heartbeat when a receiver died.
        --deduplication.func chain)
      ;;
    rule)
      cmd=("$thanos" rule "${quick[@]}" --http-address "127.0.0.1:$RULE_HTTP_PORT"
        --grpc-address "127.0.0.1:$RULE_GRPC_PORT" --data-dir "$STACK_DIR/rule/data"
        --rule-file "$STACK_DIR/rule/rules/*.yaml" --eval-interval 5s
        --query "127.0.0.1:$QUERY_HTTP_PORT"
        --alertmanagers.url "http://127.0.0.1:$ALERTMANAGER_PORT")
      ;;
    otelcol-[0-9]*)
      i=${name#otelcol-}
      local otlp=OTLP_GRPC_PORT_$i http=OTLP_HTTP_PORT_$i health=COLLECTOR_HEALTH_PORT_$i
      local metrics=COLLECTOR_METRICS_PORT_$i
      cmd=(env PROMETHEUS_REMOTE_WRITE_URL="http://127.0.0.1:$RECEIVE_ROUTER_WRITE_PORT/api/v1/receive"
        COLLECTOR_OTLP_GRPC_ENDPOINT="127.0.0.1:${!otlp}" COLLECTOR_OTLP_HTTP_ENDPOINT="127.0.0.1:${!http}"
        COLLECTOR_HEALTH_ENDPOINT="127.0.0.1:${!health}"
        COLLECTOR_METRICS_HOST=127.0.0.1 COLLECTOR_METRICS_PORT="${!metrics}" GOMEMLIMIT="${GOMEMLIMIT:-460MiB}"
        "$(bin_path otelcol)" --config "$REPO_ROOT/otel-config/collector.yaml")
      ;;
    *) die "unknown fleet component '$name' (one of: $(fleet_components))" ;;
  esac
}

fleet_health_check() {
  local name=$1 port
  case $name in
    receive-router) port=$RECEIVE_ROUTER_HTTP_PORT ;;
    receive-[0-9]*) port=RECEIVE_${name#receive-}_HTTP_PORT && port=${!port} ;;
    query) port=$QUERY_HTTP_PORT ;;
    rule) port=$RULE_HTTP_PORT ;;
    otelcol-[0-9]*)
      port=COLLECTOR_HEALTH_PORT_${name#otelcol-}
      curl -fsS "http://127.0.0.1:${!port}/"
      return
      ;;
    *) return 1 ;;
  esac
  curl -fsS "http://127.0.0.1:$port/-/ready"
}

# The ruler's rules: the shipped files, `for:` shortened as `stack up --rule-for` does.
fleet_write_configs() {
  local i sep="" endpoints=""
  for i in $(seq 1 "$FLEET_RECEIVERS"); do
    local grpc=RECEIVE_${i}_GRPC_PORT
    endpoints+="$sep\"127.0.0.1:${!grpc}\""
    sep=", "
  done
  echo "[{\"hashring\": \"default\", \"endpoints\": [$endpoints]}]" >"$STACK_DIR/hashring.json"
  mkdir -p "$STACK_DIR/rule/rules" "$STACK_DIR/rule/data"
  stack_rules "$STACK_DIR/rule/rules"
  write_alertmanager_config
}

fleet_up() {
  RULE_FOR=""
  local clusters=3
  while [[ $# -gt 0 ]]; do
    case $1 in
      --rule-for) RULE_FOR=${2:?--rule-for needs a duration such as 10s}; shift 2 ;;
      --clusters) clusters=${2:?--clusters needs a number}; shift 2 ;;
      *) die "fleet up: unknown option '$1' (known: --clusters N, --rule-for DURATION)" ;;
    esac
  done
  [[ $clusters =~ ^[1-9][0-9]*$ ]] || die "fleet up: --clusters takes a number of clusters, not '$clusters'"
  [[ -x "$(bin_path thanos)" ]] || die "thanos is not built: run 'tests/stack/stack build thanos' first"
  if [[ -f "$STACK_DIR/ports.env" ]]; then
    log "a stack already exists in $STACK_DIR; taking it down first"
    fleet_down
  fi
  mkdir -p "$STACK_DIR/logs"
  FLEET_CLUSTERS=$clusters
  local vars=(WEBHOOK_PORT ALERTMANAGER_PORT QUERY_HTTP_PORT QUERY_GRPC_PORT RULE_HTTP_PORT RULE_GRPC_PORT) i r
  for r in ROUTER $(seq 1 "$FLEET_RECEIVERS"); do
    vars+=("RECEIVE_${r}_HTTP_PORT" "RECEIVE_${r}_GRPC_PORT" "RECEIVE_${r}_WRITE_PORT" "RECEIVE_${r}_CAPNP_PORT")
  done
  for i in $(seq 1 "$clusters"); do
    vars+=("OTLP_GRPC_PORT_$i" "OTLP_HTTP_PORT_$i" "COLLECTOR_HEALTH_PORT_$i" "COLLECTOR_METRICS_PORT_$i")
  done
  write_ports fleet "${vars[@]}"
  {
    echo "RULE_FOR=$RULE_FOR"
    echo "FLEET_CLUSTERS=$clusters"
    echo "STACK_COMPONENTS=\"$(fleet_components)\""
  } >>"$STACK_DIR/ports.env"
  load_ports
  fleet_write_configs

  # The shared part starts first (it binds its ports at once), then every cluster's etcd
  # and API server start together, each a `stack up --api-only` of its own.
  local start=$SECONDS comp
  for comp in $STACK_COMPONENTS; do start_component "$comp"; done
  local pids=()
  for i in $(seq 1 "$clusters"); do
    SEINODE_STACK_DIR="$STACK_DIR/cluster-$i" "$STACK_ROOT/stack" up --api-only \
      >"$STACK_DIR/logs/cluster-$i.up.log" 2>&1 &
    pids+=($!)
  done
  for comp in $STACK_COMPONENTS; do wait_healthy "$comp"; done
  local failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      tail -n 20 "$STACK_DIR/logs/cluster-$((i + 1)).up.log" >&2
      failed=1
    fi
  done
  ((failed == 0)) || die "a cluster of the fleet did not start (log above; logs in $STACK_DIR/logs)"
  log "fleet of $clusters clusters up in $STACK_DIR in $((SECONDS - start)) s; 'tests/stack/stack fleet env' describes it"
}

fleet_down() {
  [[ -f "$STACK_DIR/ports.env" ]] || {
    log "no fleet in $STACK_DIR"
    return 0
  }
  load_ports
  local comp reversed="" i
  for comp in ${STACK_COMPONENTS:-}; do reversed="$comp $reversed"; done
  for comp in $reversed; do stop_component "$comp"; done
  for i in $(seq 1 "${FLEET_CLUSTERS:-0}"); do
    [[ -d "$STACK_DIR/cluster-$i" ]] && SEINODE_STACK_DIR="$STACK_DIR/cluster-$i" "$STACK_ROOT/stack" down
  done
  rm -rf "$STACK_DIR"
  log "fleet in $STACK_DIR is down"
}

# What a test or a benchmark needs, one `KEY=VALUE` a line (sourceable).
fleet_env() {
  load_ports
  [[ -n ${FLEET_CLUSTERS:-} ]] || die "no fleet in $STACK_DIR (a stack's directory?): run 'tests/stack/stack fleet up'"
  local i
  echo "FLEET_DIR=$STACK_DIR"
  echo "FLEET_CLUSTERS=$FLEET_CLUSTERS"
  echo "THANOS_QUERY_URL=http://127.0.0.1:$QUERY_HTTP_PORT"
  echo "THANOS_RULE_URL=http://127.0.0.1:$RULE_HTTP_PORT"
  echo "ALERTMANAGER_URL=http://127.0.0.1:$ALERTMANAGER_PORT"
  echo "WEBHOOK_LOG=$STACK_DIR/webhook/notifications.jsonl"
  for i in $(seq 1 "$FLEET_CLUSTERS"); do
    local otlp=OTLP_GRPC_PORT_$i
    echo "CLUSTER_${i}_KUBECONFIG=$STACK_DIR/cluster-$i/kubeconfig"
    echo "CLUSTER_${i}_OTLP_ENDPOINT=http://127.0.0.1:${!otlp}"
  done
}

# SIGKILL, as a crash or an OOM kill: no shutdown, no flush.
kill_component() {
  local name=$1 pidfile="$STACK_DIR/pids/$1.pid" pid
  [[ -f $pidfile ]] || die "$name is not running in $STACK_DIR"
  pid=$(cat "$pidfile")
  kill -KILL "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$pidfile"
}

fleet_cmd() {
  local sub=${1:-}
  [[ $# -gt 0 ]] && shift
  case $sub in
    up) fleet_up "$@" ;;
    down) fleet_down ;;
    env) fleet_env ;;
    *) die "fleet: unknown subcommand '$sub' (up [--clusters N] [--rule-for DUR], down, env)" ;;
  esac
}
