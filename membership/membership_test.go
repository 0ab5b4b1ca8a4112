package membership

import (
	"errors"
	"testing"

	"github.com/geomatch/geomatch/shardmap"
)

func TestLocalUpdateBumpsEpochAndWakesWatchers(t *testing.T) {
	l, err := NewLocal(shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "a:1"}}))
	if err != nil {
		t.Fatal(err)
	}
	m1, changed := l.Current()
	m2, err := l.Update(func(d *shardmap.Doc) error {
		d.Members = append(d.Members, shardmap.Member{ID: "b", Addr: "b:1"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("watchers were not woken")
	}
	if m2.Epoch() != m1.Epoch()+1 || len(m2.Members()) != 2 || len(m1.Members()) != 1 {
		t.Fatalf("epochs %d→%d, members %d→%d", m1.Epoch(), m2.Epoch(), len(m1.Members()), len(m2.Members()))
	}
}

func TestLocalFailedUpdatePublishesNothing(t *testing.T) {
	l, err := NewLocal(shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "a:1"}}))
	if err != nil {
		t.Fatal(err)
	}
	before, changed := l.Current()
	if _, err := l.Update(func(*shardmap.Doc) error { return errors.New("no") }); err == nil {
		t.Fatal("a failing change succeeded")
	}
	if _, err := l.Update(func(d *shardmap.Doc) error { d.Members = append(d.Members, d.Members[0]); return nil }); err == nil {
		t.Fatal("a change making duplicate members succeeded")
	}
	after, _ := l.Current()
	select {
	case <-changed:
		t.Fatal("watchers woken without a change")
	default:
	}
	if after != before {
		t.Fatal("a failed update replaced the map")
	}
}

func TestStaticKind(t *testing.T) {
	s, err := NewStatic(shardmap.DefaultDoc([]shardmap.Member{{ID: "a", Addr: "a:1"}}))
	if err != nil || s.Kind() != "static" {
		t.Fatalf("NewStatic: %v %v", s, err)
	}
}
