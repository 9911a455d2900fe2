package linux

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
)

// LogRecord is one record of the kernel's log buffer (the printk ring buffer).
type LogRecord struct {
	Seq  uint64
	Time time.Duration // since boot
	Text string
	// Caller is printk's caller id (Linux ≥ 5.1 records it always): the
	// pid of the task that printed, or CallerCPU|cpu when it printed
	// outside task context; 0 when unknown.
	Caller uint32
	// Level is the record's log level (0 KERN_EMERG … 7 KERN_DEBUG) and
	// Facility its syslog facility (0 for the kernel's own messages), as
	// `dmesg -r` prints them ("<6>" is level 6, facility 0).
	Level, Facility uint8
}

// CallerString is the caller as CONFIG_PRINTK_CALLER prints it: "T118"
// for a task, "C1" for a CPU. (Every kernel whose log Log reads records
// callers, so 0 is task 0, the idle task.)
func (r *LogRecord) CallerString() string {
	switch {
	case r.Caller&CallerCPU != 0:
		return "C" + strconv.FormatUint(uint64(r.Caller&^CallerCPU), 10)
	}
	return "T" + strconv.FormatUint(uint64(r.Caller), 10)
}

// CallerCPU is set in LogRecord.Caller when the caller was a CPU (in
// interrupt context) rather than a task.
const CallerCPU = 0x80000000

// Bounds on what the log reader accepts from a dump.
const (
	maxPrbCountBits = 22 // 4 M descriptors
	maxPrbSizeBits  = 30 // 1 GiB of text
	maxLogText      = 1024
)

// Log returns up to max of the newest records (max < 0: all of them) of a kernel dump's log
// buffer, oldest first, using the printk ring-buffer layout (Linux ≥ 5.10)
// described by the VMCOREINFO note. It returns nil when the dump has no log
// or an older layout.
func (k *Kernel) Log(max int) []LogRecord {
	if max == 0 {
		return nil
	}
	if max < 0 {
		max = math.MaxInt
	}
	info := k.info
	prbSym, ok := info.Symbol("prb")
	if !ok {
		return nil
	}
	off := func(name string, def int64) uint64 {
		if v, ok := info["OFFSET("+name+")"]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return uint64(n)
			}
		}
		return uint64(def)
	}
	size := func(name string, def int64) uint64 {
		if v, ok := info["SIZE("+name+")"]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return uint64(n)
			}
		}
		return uint64(def)
	}
	rb, ok := k.readU64(prbSym)
	if !ok {
		return nil
	}
	descRing := rb + off("printk_ringbuffer.desc_ring", 0)
	textRing := rb + off("printk_ringbuffer.text_data_ring", 48)
	var b4 [4]byte
	if n, _ := k.mem.ReadAt(b4[:], descRing+off("prb_desc_ring.count_bits", 0)); n != 4 {
		return nil
	}
	countBits := binary.LittleEndian.Uint32(b4[:])
	if n, _ := k.mem.ReadAt(b4[:], textRing+off("prb_data_ring.size_bits", 0)); n != 4 {
		return nil
	}
	sizeBits := binary.LittleEndian.Uint32(b4[:])
	if countBits > maxPrbCountBits || sizeBits > maxPrbSizeBits {
		return nil
	}
	descs, _ := k.readU64(descRing + off("prb_desc_ring.descs", 8))
	infos, _ := k.readU64(descRing + off("prb_desc_ring.infos", 16))
	head, _ := k.readU64(descRing + off("prb_desc_ring.head_id", 24))
	data, _ := k.readU64(textRing + off("prb_data_ring.data", 8))
	if descs == 0 || infos == 0 || data == 0 {
		return nil
	}
	count := uint64(1) << countBits
	dataSize := uint64(1) << sizeBits
	descSize := size("prb_desc", 24)
	infoSize := size("printk_info", 88)
	const idMask = 1<<62 - 1
	var recs []LogRecord
	// Walk back from the head id over at most count descriptors.
	for i := uint64(0); i < count && len(recs) < max; i++ {
		id := (head - i) & idMask
		idx := id & (count - 1)
		da := descs + idx*descSize
		sv, ok := k.readU64(da + off("prb_desc.state_var", 0))
		if !ok {
			break
		}
		if sv&idMask != id {
			break // overwritten or never used: the oldest record was passed
		}
		if st := sv >> 62; st != 1 && st != 2 { // committed or finalized
			continue
		}
		lpos := da + off("prb_desc.text_blk_lpos", 8)
		begin, _ := k.readU64(lpos + off("prb_data_blk_lpos.begin", 0))
		next, _ := k.readU64(lpos + off("prb_data_blk_lpos.next", 8))
		if begin&1 != 0 || next&1 != 0 {
			continue // data-less record
		}
		ia := infos + idx*infoSize
		seq, _ := k.readU64(ia + off("printk_info.seq", 0))
		ts, _ := k.readU64(ia + off("printk_info.ts_nsec", 8))
		var l2 [2]byte
		if n, _ := k.mem.ReadAt(l2[:], ia+off("printk_info.text_len", 16)); n != 2 {
			continue
		}
		textLen := uint64(binary.LittleEndian.Uint16(l2[:]))
		// struct printk_info: u16 text_len; u8 facility; u8 flags:5, level:3.
		var lf [2]byte
		k.mem.ReadAt(lf[:], ia+off("printk_info.text_len", 16)+2)
		var caller uint32
		if co, ok := info["OFFSET(printk_info.caller_id)"]; ok {
			if n, err := strconv.ParseUint(co, 10, 8); err == nil {
				if nr, _ := k.mem.ReadAt(b4[:], ia+n); nr == 4 {
					caller = binary.LittleEndian.Uint32(b4[:])
				}
			}
		}
		var blk uint64
		switch {
		case begin>>sizeBits == next>>sizeBits && begin < next:
			blk = begin & (dataSize - 1)
		case (begin+dataSize)>>sizeBits == next>>sizeBits:
			blk = 0
		default:
			continue
		}
		textLen = min(textLen, maxLogText, dataSize-min(dataSize, blk+8))
		buf := make([]byte, textLen)
		if n, _ := k.mem.ReadAt(buf, data+blk+8); uint64(n) != textLen {
			continue
		}
		recs = append(recs, LogRecord{Seq: seq, Time: time.Duration(ts), Text: string(buf), Caller: caller,
			Facility: lf[0], Level: lf[1] >> 5})
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs
}

// panicMarkers are the starts of the kernel's crash messages, most specific first.
var panicMarkers = []string{"Kernel panic - not syncing", "BUG: ", "Oops: ", "general protection fault", "kernel BUG at"}

// PanicMessage returns the newest crash message in the kernel log ("Kernel
// panic - not syncing: …", "BUG: …", "Oops: …"), or "" when there is none.
func (k *Kernel) PanicMessage() string {
	r, _ := k.crashRecord()
	return r.Text
}

// crashRecord returns the log record PanicMessage reports.
func (k *Kernel) crashRecord() (LogRecord, bool) {
	recs := k.Log(256)
	for _, m := range panicMarkers {
		for i := len(recs) - 1; i >= 0; i-- {
			if strings.HasPrefix(recs[i].Text, m) {
				return recs[i], true
			}
		}
	}
	return LogRecord{}, false
}
