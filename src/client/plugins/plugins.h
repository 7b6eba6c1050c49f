/* plugins.h - the built-in application plugins (visitor.h).  Each is a
 * const struct visitor_plugin defined in its own file. */
#pragma once

#include "visitor.h"

extern const struct visitor_plugin app_chromium_plugin;	   /* app-chromium.c (CDP) */
extern const struct visitor_plugin app_firefox_plugin;	   /* app-firefox.c */
extern const struct visitor_plugin app_libreoffice_plugin; /* app-libreoffice.c */
extern const struct visitor_plugin app_pdf_plugin;	   /* app-pdf.c */
extern const struct visitor_plugin app_fetch_plugin;	   /* app-fetch.c (no rendering) */
extern const struct visitor_plugin app_generic_plugin;	   /* app-generic.c (applications.conf) */
