// An image by a client's reference, for every route that names one (inspect, history, save, tag), with docker's
// 404 wording.

import { isSiloError } from '../../common/errors.js';
import type { Image } from '../../storage/types.js';
import type { Ctx } from './ctx.js';
import { dockerNotFound, withTag } from './errors.js';

export async function imageOf(x: Ctx, ref: string): Promise<Image> {
  try {
    return await x.svc.storage.getImage(ref);
  } catch (e) {
    if (isSiloError(e) && e.class === 'NotFound') throw dockerNotFound(`No such image: ${withTag(ref)}`);
    throw e;
  }
}
