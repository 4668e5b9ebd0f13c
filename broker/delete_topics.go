package broker

// DeleteTopics: versions 0 to 6.
//
// v0-v5 name topics in TopicNames; v5 adds error messages; v6 names each
// topic by name or by id (Topics), and answers with both.
//
// With delete.topic.enable=false every topic gets TOPIC_DELETION_DISABLED
// (INVALID_REQUEST before v3, as in Kafka). Otherwise, per entry, as
// Kafka's controller checks them: both or neither of name and id
// (INVALID_REQUEST), a topic named twice, by name, by id or once by each
// (INVALID_REQUEST for every such entry), an unknown id (UNKNOWN_TOPIC_ID)
// or name (UNKNOWN_TOPIC_OR_PARTITION). Kafka's internal topics are refused
// with INVALID_REQUEST: Kafka's own tools refuse to delete them, and here
// the coordinators that own them would lose their state. The valid rest is
// deleted in one metadata write; the controller's watcher (broker.apply)
// closes and deletes the local logs before the write returns, so a topic
// created again under the same name starts empty.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/wire"
)

const (
	deleteTopicsMinVersion = 0
	deleteTopicsMaxVersion = 6
)

// deleteEntry is one topic of a DeleteTopics request as resolved.
type deleteEntry struct {
	byID  bool
	name  string             // resolved name, "" if unknown
	id    controller.TopicID // resolved id
	topic *controller.Topic
	err   error
}

func (b *Broker) handleDeleteTopics(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.DeleteTopicsRequest)
	resp := in.ResponseKind().(*kmsg.DeleteTopicsResponse)
	resp.Version = req.Version

	entries := b.resolveDeleteEntries(req.Version, in)
	if !b.cfg.Settings.DeleteTopicEnable {
		err := apiErrorf(kerr.TopicDeletionDisabled, "Topic deletion is disabled (delete.topic.enable=false).")
		if req.Version < 3 {
			err = apiErrorf(kerr.InvalidRequest, "Topic deletion is disabled.")
		}
		for i := range entries {
			entries[i].err = err
		}
	}

	var refs []controller.TopicRef
	for i := range entries {
		if e := &entries[i]; e.err == nil {
			refs = append(refs, controller.TopicRef{Name: e.name, ID: e.id})
		}
	}
	if len(refs) > 0 {
		cctx, cancel := adminContext(ctx, in.TimeoutMillis)
		defer cancel()
		results, err := b.ctrl.DeleteTopics(cctx, refs)
		byName := make(map[string]error, len(results))
		for _, r := range results {
			byName[r.Name] = r.Err
			if r.Err == nil {
				b.logger.Info("topic deleted by request", "topic", r.Name, "client", clientAddr(req))
			}
		}
		for i := range entries {
			e := &entries[i]
			if e.err != nil {
				continue
			}
			if err != nil {
				e.err = err
				continue
			}
			if rerr := byName[e.name]; rerr != nil {
				// Deleted by someone else since we resolved it.
				e.err = rerr
				if e.byID {
					e.err = apiErrorf(kerr.UnknownTopicID, "This server does not host this topic ID.")
				}
			}
		}
		if err != nil {
			b.logger.Warn("DeleteTopics failed", "err", err)
		}
	}

	for i := range entries {
		e := &entries[i]
		rt := kmsg.NewDeleteTopicsResponseTopic()
		if e.name != "" {
			name := e.name
			rt.Topic = &name
		}
		rt.TopicID = e.id
		if e.err != nil {
			rt.ErrorCode = errCode(b.logger, e.err)
			if req.Version >= 5 {
				rt.ErrorMessage = adminErrMessage(e.err)
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return wire.Msg(resp)
}

// resolveDeleteEntries turns the request's topics into names, with the
// per-entry errors that need no write.
func (b *Broker) resolveDeleteEntries(version int16, in *kmsg.DeleteTopicsRequest) []deleteEntry {
	md := b.ctrl.Current()
	var entries []deleteEntry
	byName := func(name string) deleteEntry {
		e := deleteEntry{name: name}
		if t := md.Topics[name]; t != nil {
			e.topic, e.id = t, t.ID
		} else {
			e.err = unknownTopic(name)
		}
		return e
	}
	if version < 6 {
		for _, name := range in.TopicNames {
			entries = append(entries, byName(name))
		}
	} else {
		for _, t := range in.Topics {
			id := controller.TopicID(t.TopicID)
			switch {
			case t.Topic != nil && id != (controller.TopicID{}):
				entries = append(entries, deleteEntry{name: *t.Topic, id: id,
					err: apiErrorf(kerr.InvalidRequest, "You may not specify both topic name and topic id.")})
			case t.Topic == nil && id == (controller.TopicID{}):
				entries = append(entries, deleteEntry{
					err: apiErrorf(kerr.InvalidRequest, "Neither topic name nor id were specified.")})
			case t.Topic != nil:
				entries = append(entries, byName(*t.Topic))
			default:
				e := deleteEntry{byID: true, id: id}
				if tp := md.TopicByID(id); tp != nil {
					e.topic, e.name = tp, tp.Name
				} else {
					e.err = apiErrorf(kerr.UnknownTopicID, "This server does not host this topic ID.")
				}
				entries = append(entries, e)
			}
		}
	}

	// The same topic twice, however named, is refused for every entry.
	type ways struct{ byName, byID int }
	seen := map[string]*ways{}
	for _, e := range entries {
		if e.topic == nil {
			continue
		}
		w := seen[e.name]
		if w == nil {
			w = &ways{}
			seen[e.name] = w
		}
		if e.byID {
			w.byID++
		} else {
			w.byName++
		}
	}
	for i := range entries {
		e := &entries[i]
		if e.topic == nil || e.err != nil {
			continue
		}
		switch w := seen[e.name]; {
		case w.byName+w.byID < 2:
		case w.byID == 0:
			e.err = apiErrorf(kerr.InvalidRequest, "Duplicate topic name.")
		case w.byName == 0:
			e.err = apiErrorf(kerr.InvalidRequest, "Duplicate topic id.")
		default:
			e.err = apiErrorf(kerr.InvalidRequest, "The provided topic name maps to an ID that was already supplied.")
		}
		if e.err == nil && isInternalTopic(e.name, e.topic) {
			e.err = apiErrorf(kerr.InvalidRequest, "Topic %s is an internal topic and is not allowed to be deleted.", e.name)
		}
	}
	return entries
}
