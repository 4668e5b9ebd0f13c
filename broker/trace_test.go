package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestSpans checks that produce, fetch (hot and cold), offload and
// controller decisions each leave a span.
func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tb := tieredBroker(t, withTracer(tp.Tracer("test")))
	createTopic(t, tb, "traced", 1, map[string]*string{
		"segment.bytes": kadm.StringPtr("4096"), "local.retention.bytes": kadm.StringPtr("4096"),
	})
	produceSync(t, tb.Client(kgo.DefaultProduceTopic("traced"), kgo.ProducerBatchMaxBytes(1024)), randomRecords(300, 50, 3)...)
	_, p := tb.B.lookup("traced", 0)
	waitFor(t, "offload", 20*time.Second, func() bool { return p.log.StartOffset() > 0 })
	consumeAll(t, tb, "traced", 1, 300)
	seen := map[string]int{}
	for _, s := range rec.Ended() {
		seen[s.Name()]++
	}
	for _, name := range []string{"produce", "fetch", "fetch.remote", "offload.segment", "controller.update"} {
		if seen[name] == 0 {
			t.Errorf("no %q span; saw %v", name, seen)
		}
	}
}
