/* fuzz-pcap - libFuzzer target for the pcap flow reader (pcap-flows.c):
 * the visit's pcap is traffic the sandbox produced, i.e. untrusted.  Every
 * input must parse or be refused without a crash, a leak or an
 * out-of-bounds read, and the flow count must respect the bound. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "pcap-flows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pcap_flows pf;
	if (pcap_flows_parse(data, size, 64, &pf) == 0) {
		if (pf.n > 64)
			abort();
		for (size_t i = 0; i < pf.n; i++) {
			char ep[80];
			(void)pcap_flow_endpoint(pf.flows[i].family, pf.flows[i].src, pf.flows[i].sport,
						 ep, sizeof(ep));
		}
		pcap_flows_done(&pf);
	}
	return 0;
}
