"""Field layouts of the KIS real-time TRs we model (../shared/kis-protocol.md §6)."""

from __future__ import annotations

#: The 46 documented fields of H0STCNT0, in wire order. H0UNCNT0/H0NXCNT0 share the layout
#: (position 21 is called CNTG_CLS_CODE there). Real frames may carry more trailing fields.
H0STCNT0_FIELDS: tuple[str, ...] = (
    "MKSC_SHRN_ISCD", "STCK_CNTG_HOUR", "STCK_PRPR", "PRDY_VRSS_SIGN", "PRDY_VRSS", "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC", "STCK_OPRC", "STCK_HGPR", "STCK_LWPR", "ASKP1", "BIDP1", "CNTG_VOL",
    "ACML_VOL", "ACML_TR_PBMN", "SELN_CNTG_CSNU", "SHNU_CNTG_CSNU", "NTBY_CNTG_CSNU", "CTTR",
    "SELN_CNTG_SMTN", "SHNU_CNTG_SMTN", "CCLD_DVSN", "SHNU_RATE", "PRDY_VOL_VRSS_ACML_VOL_RATE",
    "OPRC_HOUR", "OPRC_VRSS_PRPR_SIGN", "OPRC_VRSS_PRPR", "HGPR_HOUR", "HGPR_VRSS_PRPR_SIGN",
    "HGPR_VRSS_PRPR", "LWPR_HOUR", "LWPR_VRSS_PRPR_SIGN", "LWPR_VRSS_PRPR", "BSOP_DATE",
    "NEW_MKOP_CLS_CODE", "TRHT_YN", "ASKP_RSQN1", "BIDP_RSQN1", "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN", "VOL_TNRT", "PRDY_SMNS_HOUR_ACML_VOL", "PRDY_SMNS_HOUR_ACML_VOL_RATE",
    "HOUR_CLS_CODE", "MRKT_TRTM_CLS_CODE", "VI_STND_PRC",
)
H0STCNT0_WIDTH = len(H0STCNT0_FIELDS)
assert H0STCNT0_WIDTH == 46

#: The real-time trade TRs (§6, §6.1): KRX, Nextrade, and KIS's integrated KRX + NXT stream.
TR_TRADES_KRX = "H0STCNT0"
TR_TRADES_NXT = "H0NXCNT0"
TR_TRADES_TOTAL = "H0UNCNT0"
#: TRs whose records use the H0STCNT0 layout and become TradeRecord values.
TRADE_TR_IDS: frozenset[str] = frozenset({TR_TRADES_KRX, TR_TRADES_TOTAL, TR_TRADES_NXT})

#: Documented minimum widths of other TRs, used only to sanity-check generic frames.
KNOWN_MIN_WIDTHS: dict[str, int] = {
    "H0STCNT0": 46, "H0UNCNT0": 46, "H0NXCNT0": 46,
    "H0STASP0": 59, "H0NXASP0": 65, "H0UNASP0": 65,
    "H0STANC0": 45, "H0STCNI0": 23, "H0STCNI9": 23,
}

#: Sign codes (PRDY_VRSS_SIGN and friends).
SIGN_LIMIT_UP = "1"
SIGN_UP = "2"
SIGN_FLAT = "3"
SIGN_LIMIT_DOWN = "4"
SIGN_DOWN = "5"

#: Positions used on the hot path.
IDX_CODE, IDX_TIME, IDX_PRICE, IDX_SIGN, IDX_CHANGE, IDX_CHANGE_RATE = 0, 1, 2, 3, 4, 5
IDX_VOLUME, IDX_CUM_VOLUME, IDX_CUM_VALUE = 12, 13, 14
IDX_STRENGTH, IDX_SIDE, IDX_BUSINESS_DATE = 18, 21, 33
