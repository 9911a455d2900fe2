package dump

// ReplicatePrStatus is replicatePrStatus for the external tests.
var ReplicatePrStatus = replicatePrStatus
