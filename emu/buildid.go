package emu

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
)

// KernelBuildID returns the hex NT_GNU_BUILD_ID of an ELF image, or "".
func KernelBuildID(image []byte) string {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return ""
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE || s.Size > 1<<16 {
			continue
		}
		b, err := s.Data()
		if err != nil {
			continue
		}
		for len(b) >= 12 {
			nsz, dsz, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
			off := 12 + (uint64(nsz)+3)&^3
			end := off + (uint64(dsz)+3)&^3
			if end > uint64(len(b)) || off+uint64(dsz) > uint64(len(b)) {
				break
			}
			if typ == 3 && nsz == 4 && string(b[12:15]) == "GNU" {
				return hex.EncodeToString(b[off : off+uint64(dsz)])
			}
			b = b[end:]
		}
	}
	return ""
}
