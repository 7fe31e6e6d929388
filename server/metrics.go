package server

import (
	"context"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/vektah/gqlparser/v2/ast"
)

// metrics is the process's Prometheus registry and instruments. A registry
// per server (not the global one) keeps tests that start several servers
// independent.
type metrics struct {
	registry        *prometheus.Registry
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	operations      *prometheus.CounterVec
	operationTime   *prometheus.HistogramVec
	graphqlErrors   *prometheus.CounterVec
	wsConnections   prometheus.Gauge
	wsCloses        *prometheus.CounterVec
	subscriptions   prometheus.Gauge
	eventsDelivered prometheus.Counter
}

func newMetrics(db *sqlx.DB) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskbridge_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "deskbridge_http_request_duration_seconds", Help: "HTTP request latency by route (WebSocket upgrades excluded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskbridge_graphql_operations_total", Help: "GraphQL operations by type and outcome (ok or error).",
		}, []string{"type", "outcome"}),
		operationTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "deskbridge_graphql_operation_duration_seconds", Help: "GraphQL query and mutation latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"type"}),
		graphqlErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskbridge_graphql_errors_total", Help: "GraphQL errors by extensions.code.",
		}, []string{"code"}),
		wsConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskbridge_websocket_connections", Help: "Open GraphQL WebSocket connections.",
		}),
		wsCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskbridge_websocket_closes_total", Help: "Closed GraphQL WebSocket connections by close code.",
		}, []string{"code"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskbridge_subscriptions_active", Help: "Active GraphQL subscriptions.",
		}),
		eventsDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskbridge_subscription_messages_total", Help: "Subscription results queued to WebSocket clients, shared ones once per client.",
		}),
	}
	m.registry.MustRegister(m.httpRequests, m.httpDuration, m.operations, m.operationTime, m.graphqlErrors,
		m.wsConnections, m.wsCloses, m.subscriptions, m.eventsDelivered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db.DB, "deskbridge"))
	return m
}

// graphqlMetrics counts operations, their latency and their errors by code.
type graphqlMetrics struct{ m *metrics }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = graphqlMetrics{}

func (graphqlMetrics) ExtensionName() string                   { return "Metrics" }
func (graphqlMetrics) Validate(graphql.ExecutableSchema) error { return nil }

func (g graphqlMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	start := time.Now()
	resp := next(ctx)
	if resp == nil {
		return nil
	}
	opType := "unknown"
	if graphql.HasOperationContext(ctx) {
		if oc := graphql.GetOperationContext(ctx); oc.Operation != nil {
			opType = string(oc.Operation.Operation)
		}
	}
	outcome := "ok"
	if len(resp.Errors) > 0 {
		outcome = "error"
	}
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			code = "UNKNOWN"
		}
		g.m.graphqlErrors.WithLabelValues(code).Inc()
	}
	if opType == string(ast.Subscription) {
		// An event's result, not an operation. The WebSocket transport
		// counts what reaches each client (shared results once per client).
		return resp
	}
	g.m.operations.WithLabelValues(opType, outcome).Inc()
	g.m.operationTime.WithLabelValues(opType).Observe(time.Since(start).Seconds())
	return resp
}

func statusLabel(code int) string { return strconv.Itoa(code) }
