package models

import "testing"

func TestBusID(t *testing.T) {
	for _, tc := range []struct {
		epoch int64
		seq   uint64
		index int
		pos   int64
	}{
		{1, 1, 0, 1 << 16},
		{1, 1, 1, 1<<16 | 1},
		{7, 42, MaxPerBusMessage - 1, 42<<16 | 0xffff},
		{7, 1 << 40, 3, 1<<56 | 3},
	} {
		id := NewBusID(tc.epoch, tc.seq, tc.index)
		if id.Epoch != tc.epoch || id.Pos != tc.pos || id.IsZero() {
			t.Errorf("NewBusID(%d, %d, %d) = %+v, want pos %#x", tc.epoch, tc.seq, tc.index, id, tc.pos)
		}
		if uint64(id.Pos>>16) != tc.seq || int(id.Pos&0xffff) != tc.index {
			t.Errorf("%+v does not unpack to seq %d index %d", id, tc.seq, tc.index)
		}
	}
	if !(BusID{}).IsZero() {
		t.Error("the zero BusID is not zero")
	}
}

func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		level         string
		index, stored int
	}{
		{LevelInfo, 0, 1}, {LevelWarn, 1, 2}, {LevelError, 2, 3}, {LevelDebug, -1, 0}, {"TRACE", -1, -1}, {"info", -1, -1},
	} {
		if got := LevelIndex(tc.level); got != tc.index {
			t.Errorf("LevelIndex(%q) = %d, want %d", tc.level, got, tc.index)
		}
		if got := StoredLevelIndex(tc.level); got != tc.stored {
			t.Errorf("StoredLevelIndex(%q) = %d, want %d", tc.level, got, tc.stored)
		}
	}
}
