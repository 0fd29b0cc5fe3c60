#pragma once

#include "clinical/eventstore/event_store.h"
#include "clinical/metrics/registry.h"

namespace clinical::eventstore {

// Publishes the store's counters at scrape time (clinical_eventstore_*), labelled with the
// topic. The store must outlive the registry's use of the collector.
metrics::Collector StoreMetrics(const EventStore& store, const std::string& topic);

}  // namespace clinical::eventstore
