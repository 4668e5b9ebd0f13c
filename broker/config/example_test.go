package config_test

import (
	"fmt"
	"strings"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func ExampleNewBroker() {
	props, err := config.ParseProperties(strings.NewReader(`
# a Kafka server.properties
node.id=1
listeners=PLAINTEXT://:9092
log.retention.hours=24
num.partitions=0
`))
	if err != nil {
		panic(err)
	}
	_, err = config.NewBroker(props)
	fmt.Println(err)

	delete(props, "num.partitions")
	b, _ := config.NewBroker(props)
	fmt.Println(b.RetentionMs(), b.IgnoredNames())
	// Output:
	// num.partitions: must be >= 1, got 0
	// 86400000 [listeners node.id]
}

func ExampleApplyIncremental() {
	b := config.DefaultBroker()
	current := map[string]string{"retention.ms": "86400000"}
	v := "3600000"
	next, _ := config.ApplyIncremental(current, []config.AlterOp{
		{Name: "local.retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: &v},
	})
	if err := config.ValidateTopicUpdate(b, current, next); err != nil {
		panic(err)
	}
	t, _ := config.ResolveTopic(b, next)
	fmt.Println(t.RetentionMs, t.LocalRetentionMs)

	bad := "2000"
	next, _ = config.ApplyIncremental(map[string]string{"retention.ms": "1000"}, []config.AlterOp{
		{Name: "local.retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: &bad},
	})
	fmt.Println(config.ValidateTopicOverrides(b, next))
	// Output:
	// 86400000 3600000
	// local.retention.ms: 2000 exceeds retention.ms (1000); local data cannot outlive the log
}
