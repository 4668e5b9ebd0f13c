package broker

import (
	"maps"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

// The hand-written paths (produce, fetch) and the reflective walk count
// the same codes, and a response without errors allocates no map.
func TestCollectErrorCodes(t *testing.T) {
	produce := kmsg.NewPtrProduceResponse()
	for _, codes := range [][]int16{{0, 6, 6}, {0, 19}} {
		rt := kmsg.NewProduceResponseTopic()
		for _, c := range codes {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.ErrorCode = c
			rt.Partitions = append(rt.Partitions, rp)
		}
		produce.Topics = append(produce.Topics, rt)
	}
	create := kmsg.NewPtrCreateTopicsResponse()
	for _, c := range []int16{36, 0, 36, 37} {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.ErrorCode = c
		create.Topics = append(create.Topics, rt)
	}
	fetch := &wire.FetchResponse{ErrorCode: 0, Topics: []wire.FetchTopic{{Partitions: []wire.FetchPartition{
		{Meta: kmsg.FetchResponseTopicPartition{ErrorCode: 1}}, {}, {Meta: kmsg.FetchResponseTopicPartition{ErrorCode: 1}}}}}}
	for name, tc := range map[string]struct {
		msg  any
		want errorCodes
	}{
		"produce":   {produce, errorCodes{6: 2, 19: 1}},
		"create":    {create, errorCodes{36: 2, 37: 1}},
		"fetch":     {fetch, errorCodes{1: 2}},
		"none":      {kmsg.NewPtrProduceResponse(), nil},
		"nil":       {nil, nil},
		"no-errors": {kmsg.NewPtrHeartbeatResponse(), nil},
	} {
		var got errorCodes
		collectErrorCodes(tc.msg, &got)
		if !maps.Equal(got, tc.want) || (tc.want == nil) != (got == nil) {
			t.Errorf("%s: codes %v, want %v", name, got, tc.want)
		}
	}
	// Reflection is what the generic path is; the produce path is not.
	var reflected errorCodes
	walkErrorCodes(reflect.ValueOf(produce), &reflected, 0)
	if !maps.Equal(reflected, errorCodes{6: 2, 19: 1}) {
		t.Errorf("reflective walk of the produce response: %v", reflected)
	}
}
